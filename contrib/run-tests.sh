#!/bin/sh
# run-tests.sh -- set everything up and run every test: the plain build,
# then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
# then `make distcheck`, then each libFuzzer target for
# BATON_FUZZ_SECONDS (60) seconds. Builds out of tree in _build/.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh contrib/setup-debian.sh
if [ -f Makefile ] && [ -f config.status ]; then
	echo "run-tests.sh: the source tree is configured in place;" \
	    "run 'make distclean' first" >&2
	exit 1
fi
autoreconf -fi
jobs=$(nproc 2>/dev/null || echo 2)

run() {
	name=$1
	shift
	mkdir -p "_build/$name"
	(cd "_build/$name" && "$top/configure" -q "$@" &&
	    make -j"$jobs" && make -j"$jobs" check) || {
		for f in $(find "_build/$name/tests" -name '*.log' 2>/dev/null); do
			grep -q '^FAIL\|^ERROR' "$f" 2>/dev/null || continue
			echo "==== $f"
			tail -n 80 "$f"
		done
		echo "run-tests.sh: $name build: FAILED" >&2
		exit 1
	}
	echo "run-tests.sh: $name build: all tests passed"
}

run plain
run sanitizers --enable-sanitizers
if [ "${BATON_SKIP_DISTCHECK:-0}" != 1 ]; then
	(cd _build/plain && make -j"$jobs" distcheck)
	echo "run-tests.sh: distcheck passed"
fi
# The fuzzers, one after the other: any crash, leak or sanitizer report
# fails the run (the input is kept under _build/plain/fuzz/run/).
(cd _build/plain && make -j"$jobs" fuzz &&
    make fuzz-run FUZZ_SECONDS="${BATON_FUZZ_SECONDS:-60}") || {
	echo "run-tests.sh: fuzzing: FAILED" >&2
	exit 1
}
echo "run-tests.sh: fuzzing found nothing"

# One closing line over both builds, for people and CI alike.
pass=0
fail=0
for log in _build/plain/test-suite.log _build/sanitizers/test-suite.log; do
	p=$(sed -n 's/^# PASS: *//p' "$log" | head -n 1)
	f=$(sed -n 's/^# FAIL: *//p' "$log" | head -n 1)
	e=$(sed -n 's/^# ERROR: *//p' "$log" | head -n 1)
	pass=$((pass + ${p:-0}))
	fail=$((fail + ${f:-0} + ${e:-0}))
done
echo "tests: $pass passed, $fail failed"
