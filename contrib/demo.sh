#!/bin/sh
# demo.sh -- set everything up, build baton, start three demo backends on
# 127.0.0.1:8001-8003 and run baton on conf/proxy.ini in the foreground.
# Try: curl http://127.0.0.1:8080/   Stop with ^C.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh contrib/setup-debian.sh
if [ ! -x src/baton ] && [ ! -x _build/demo/src/baton ]; then
	autoreconf -fi
	if [ -f config.status ]; then
		make -j"$(nproc)"
	else
		mkdir -p _build/demo
		(cd _build/demo && "$top/configure" -q && make -j"$(nproc)")
	fi
fi
baton=$top/src/baton
[ -x "$baton" ] || baton=$top/_build/demo/src/baton

pids=
cleanup() {
	# shellcheck disable=SC2086
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for n in 1 2 3; do
	name=a$n
	[ $n = 3 ] && name=spare
	/usr/bin/python3 contrib/demo-backend.py "$name" "800$n" &
	pids="$pids $!"
done
echo "demo backends on 127.0.0.1:8001-8003; baton on 127.0.0.1:8080"
echo "try: curl http://127.0.0.1:8080/   (^C stops)"
echo "stats: http://127.0.0.1:9090/ (dashboard), /stats (JSON), /metrics"
"$baton" -c conf/proxy.ini
