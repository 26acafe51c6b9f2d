#!/bin/sh
# setup-debian.sh -- install what baton needs to build, test and demo on
# Debian 12. Idempotent; uses sudo when not root.
set -eu

pkgs="build-essential autoconf automake pkg-config libevent-dev libssl-dev
libinih-dev check python3 python3-prometheus-client chromium fonts-dejavu-core curl procps"

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup-debian.sh: installing$missing"
$SUDO apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
