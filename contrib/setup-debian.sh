#!/bin/sh
# setup-debian.sh -- install what baton needs to build, test, fuzz (clang
# and its libFuzzer runtime) and demo on Debian 12. Idempotent; uses sudo
# when not root. Services that packages would start (redis-server) are
# kept from starting: tests run their own.
# BATON_POLICY_RC names the policy-rc.d file (tests point it elsewhere).
set -eu

pkgs="build-essential autoconf automake pkg-config libevent-dev libssl-dev
libinih-dev libsystemd-dev libjansson-dev libc-ares-dev liburing-dev check python3 python3-prometheus-client python3-dnslib chromium fonts-dejavu-core
redis-server curl procps man-db groff-base clang libclang-rt-14-dev
openssl systemd"

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup-debian.sh: installing$missing"
policy=${BATON_POLICY_RC:-/usr/sbin/policy-rc.d}
made_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
	$SUDO chmod 755 "$policy"
	made_policy=1
fi
# A policy file that was already there (containers ship one) stays; the
# trap must not turn that case into a failure of the whole script.
cleanup() {
	if [ -n "$made_policy" ]; then
		$SUDO rm -f "$policy"
	fi
}
trap cleanup EXIT
$SUDO apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
	--no-install-recommends $missing
