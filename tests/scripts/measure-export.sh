#!/usr/bin/env bash
# Runs `hubert-ecg results export` of one run and samples it every 5 s: the tool's resident memory (VmRSS, VmHWM)
# and the output file's size; prints when the first bytes reached the file. Stops the export after MAX_SECONDS
# (default: let it finish) and says so; a finished export prints the tool's own summary (rows, first row, row groups).
# With FIFO=1 the output path is made a named pipe that `dd` drains to /dev/null (nothing lands on disk, for exports
# bigger than the disk has room for): the size column is then the bytes drained so far.
# Usage: HUBERTECG_Postgres__ConnectionString=... [FIFO=1] [MAX_SECONDS=N] measure-export.sh CLI RUN_ID OUT_FILE [export options...]
set -euo pipefail
cli="$1"; run="$2"; out="$3"; shift 3
max="${MAX_SECONDS:-0}"
rm -f "$out"
drain=""
if [ "${FIFO:-0}" = 1 ]; then
    mkfifo "$out"
    dd if="$out" of=/dev/null bs=1M status=none &
    drain=$!
    sleep 0.2
    drain_base=$(awk '/^rchar/ { print $2 }' "/proc/$drain/io")
fi
size_of() {
    if [ -n "$drain" ]; then
        awk -v b="$drain_base" '/^rchar/ { print $2 - b }' "/proc/$drain/io" 2>/dev/null || echo 0
    else
        stat -c %s "$out" 2>/dev/null || echo 0
    fi
}
start=$(date +%s.%N)
"$cli" results export --run "$run" --out "$out" "$@" > "$out.log" 2>&1 &
pid=$!
first=""
stopped=""
last_size=0
echo "t_s rss_mb hwm_mb file_mb"
while kill -0 "$pid" 2>/dev/null; do
    now=$(date +%s.%N)
    t=$(awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
    rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo -)
    hwm=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo -)
    size=$(size_of)
    last_size="$size"
    if [ -z "$first" ] && [ "$size" -gt 4096 ]; then first="$t"; fi
    echo "$t $rss $hwm $(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1048576 }')"
    if [ "$max" != 0 ] && awk -v t="$t" -v m="$max" 'BEGIN { exit !(t >= m) }'; then
        kill "$pid"
        stopped="yes"
        break
    fi
    # Sample fast at the start (to see the first bytes), then every 5 s.
    if awk -v t="$t" 'BEGIN { exit !(t < 10) }'; then sleep 0.5; else sleep 5; fi
done
wait "$pid" 2>/dev/null || true
if [ -n "$drain" ]; then
    wait "$drain" 2>/dev/null || true
    echo "drained $(awk -v s="$last_size" 'BEGIN { printf "%.0f", s / 1048576 }') MB or more to /dev/null"
    rm -f "$out"
fi
echo "first bytes in the file after: ${first:-never} s"
[ -n "$stopped" ] && echo "stopped after ${max} s (the export was still running)"
cat "$out.log"
