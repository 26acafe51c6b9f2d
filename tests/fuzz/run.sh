#!/bin/sh
# run.sh -- run each libFuzzer target for a bounded time over a copy of
# its seed corpus; exit 1 if any found a crash, leak, timeout or sanitizer
# report. Run from the build directory by `make fuzz-run`:
#     sh run.sh SRCDIR SECONDS TARGET...
# Work goes to fuzz/run/TARGET/ there (the corpus as it grew, the log, any
# crash-*, leak-* or timeout-* file); the source tree is only read.
set -u

srcdir=$1
secs=$2
shift 2

# The largest input worth trying, per target.
max_len() {
	case $1 in
	config) echo 4096 ;;
	channel) echo 8300 ;;	# CHAN_MSG_MAX and a little more
	proxyproto) echo 300 ;;	# PROXY_V2_MAX and a little more
	clienthello) echo 17000 ;;	# HELLO_MAX and a little more
	*) echo 1024 ;;
	esac
}

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS

failed=0
for t in "$@"; do
	dir=fuzz/run/$t
	rm -rf "$dir"
	mkdir -p "$dir/corpus"
	if [ -d "$srcdir/tests/fuzz/corpus/$t" ]; then
		cp "$srcdir/tests/fuzz/corpus/$t"/* "$dir/corpus/"
		chmod u+w "$dir/corpus"/*	# distcheck's tree is read-only
	fi
	dict=
	[ -f "$srcdir/tests/fuzz/$t.dict" ] &&
		dict=-dict=$srcdir/tests/fuzz/$t.dict
	./fuzz/fuzz_"$t" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
	    -print_final_stats=1 -artifact_prefix="$dir/" $dict \
	    "$dir/corpus" >"$dir/log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log")
	n=$(ls "$dir/corpus" | wc -l)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz $t: ok, ${runs:-?} runs in ${secs}s" \
		    "(${eps:-?} exec/s), corpus $n inputs"
		continue
	fi
	failed=1
	found=$(ls "$dir" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' |
	    head -n 1)
	echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} runs;" \
	    "input: ${found:+$dir/$found}; log: $dir/log"
	tail -n 40 "$dir/log" | sed 's/^/    /'
done
exit $failed
