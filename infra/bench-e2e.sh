#!/usr/bin/env bash
# End-to-end throughput of one scoring worker against `bench model` on the same machine, with the same model,
# batch size and ONNX Runtime threads (docs/benchmarks.md). Needs the services running (bash infra/local/up.sh,
# or HUBERTECG_Postgres__ConnectionString / HUBERTECG_BlobStorage__ConnectionString pointing at others) and the
# Release build of the client and silo. Uploads a synthetic cohort, runs `bench model`, starts one silo with one
# CPU worker on free ports, submits a run over the cohort and waits for it, runs `bench model` again, and prints
# the run's windows per second against the mean of the two model benchmarks, with the load average at each step.
# Options: --records N (default 1440)  --batch N (32)  --model FILE (a random small model, made if missing)
#          --threads N (ONNX Runtime intra-op threads, default 1)  --callers N (concurrent batches, default: cores)
#          --bench-seconds S (30)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
records=1440 batch=32 model="" threads=1 callers="$(nproc)" seconds=30
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --callers) callers="$2"; shift 2 ;;
        --bench-seconds) seconds="$2"; shift 2 ;;
        *) echo "usage: bash infra/bench-e2e.sh [--records N] [--batch N] [--model FILE] [--threads N] [--callers N] [--bench-seconds S]" >&2; exit 2 ;;
    esac
done

if [ -z "${HUBERTECG_Postgres__ConnectionString:-}" ] && [ -f .local/services.env ]; then
    set -a
    # shellcheck source=/dev/null
    source .local/services.env
    set +a
fi

cli="$root/src/Client/bin/Release/net10.0/hubert-ecg"
silo="$root/src/Silo/Host/bin/Release/net10.0/hubert-ecg-silo"
for f in "$cli" "$silo"; do
    [ -x "$f" ] || { echo "error: $f is missing; build with: dotnet build HubertEcg.sln -c Release" >&2; exit 1; }
done

work="$root/.local/bench-e2e"
mkdir -p "$work"
if [ -z "$model" ]; then
    model="$work/small-random-164.onnx"
    [ -f "$model" ] || "$cli" model random --size small --labels 164 --out "$model" >/dev/null
fi

# psql takes the Npgsql connection string once its keys are translated.
pg="$(echo "${HUBERTECG_Postgres__ConnectionString:-Host=127.0.0.1;Port=55432;Username=hubert;Database=hubert}" | tr ';' '\n' | awk -F= 'tolower($1)=="host"{printf "host=%s ",$2} tolower($1)=="port"{printf "port=%s ",$2}
        tolower($1)=="username"{printf "user=%s ",$2} tolower($1)=="password"{printf "password=%s ",$2} tolower($1)=="database"{printf "dbname=%s ",$2}')"
load() { cut -d' ' -f1-3 /proc/loadavg; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 30000)); }
bench() {
    local out
    echo "load average before bench model: $(load)" >&2
    out="$("$cli" bench model --model "$model" --batch "$batch" --threads "$threads" --parallel "$callers" --seconds "$seconds")"
    echo "$out" >&2
    echo "$out" | sed -n 's/^ecg_per_second=//p'
}

prefix="e2e-$(date -u +%Y%m%dT%H%M%S)"
"$cli" cohort synth --input "bench/$prefix" --records "$records" | tail -1
first="$(bench)"

id="bench-$prefix"
log="$work/$prefix-silo.log"
"$silo" --Silo:SiloPort="$(free_port)" --Silo:GatewayPort="$(free_port)" --Silo:ClusterId="$id" --Silo:ServiceId="$id" \
    --Workers:Devices:0=cpu --Workers:IntraOpThreads="$threads" --Workers:ConcurrentBatches="$callers" >"$log" 2>&1 &
silo_pid=$!
trap 'kill "$silo_pid" 2>/dev/null || true; wait "$silo_pid" 2>/dev/null || true' EXIT
sleep 3
echo "load average before the run: $(load)"
run_id="$("$cli" run submit --input "bench/$prefix" --model "$model" --batch "$batch" --name "bench-e2e $prefix")"
cpu_before="$(awk '{print $14 + $15}' "/proc/$silo_pid/stat")"
"$cli" run watch "$run_id" | tail -1
cpu_after="$(awk '{print $14 + $15}' "/proc/$silo_pid/stat")"
echo "load average after the run: $(load)"
kill "$silo_pid" 2>/dev/null || true
wait "$silo_pid" 2>/dev/null || true
trap - EXIT
second="$(bench)"

psql "$pg" -X -At -F ' ' -c "select sum(s.windows_used), extract(epoch from r.finished_at - r.started_at),
        extract(epoch from max(s.scored_at) - min(s.scored_at)) from runs r join scores s on s.run_id = r.run_id
        where r.run_id = '$run_id' group by r.run_id, r.started_at, r.finished_at" | {
    read -r windows run_seconds span_seconds
    awk -v w="$windows" -v rs="$run_seconds" -v ss="$span_seconds" -v a="$first" -v b="$second" -v cpu=$((cpu_after - cpu_before)) '
        BEGIN {
            model = (a + b) / 2; run = w / rs; span = w / ss
            printf "silo cpu: %.1f s for %d windows (%.1f cpu-ms per window)\n", cpu / 100, w, cpu * 10 / w
            printf "bench model: %.2f and %.2f windows/s (mean %.2f)\n", a, b, model
            printf "run: %d windows in %.1f s from start to completion: %.2f windows/s, %.0f%% of bench model\n", w, rs, run, 100 * run / model
            printf "run from its first score row to its last: %.2f windows/s, %.0f%%\n", span, 100 * span / model
            printf "ratio=%.3f\n", run / model
        }'
}
