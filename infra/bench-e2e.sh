#!/usr/bin/env bash
# End-to-end throughput of one scoring worker against `bench model` on the same machine, with the same model,
# batch size and ONNX Runtime threads (docs/benchmarks.md). Needs the services running (bash infra/local/up.sh,
# or HUBERTECG_Postgres__ConnectionString / HUBERTECG_BlobStorage__ConnectionString pointing at others) and the
# Release build of the client and silo. Uploads a synthetic cohort, runs `bench model`, starts one silo with one
# CPU worker on free ports, submits a run over the cohort and waits for it, runs `bench model` again, and prints
# the run's windows per second against the mean of the two model benchmarks, with the load average at each step
# and the CPU the silo, Postgres, Azurite and everything else took during the run.
# Options: --records N (default 1440)  --batch N (32)  --model FILE (a random small model, made if missing)
#          --threads N (ONNX Runtime intra-op threads, default 1)  --callers N (concurrent batches, default: cores)
#          --bench-seconds S (30)  --shared-blob-store (use the configured blob store instead of a fresh Azurite)
#
# Unless told otherwise, the cohort goes to a fresh in-memory Azurite of the benchmark's own on a free port: Azurite
# finds a blob by scanning its metadata, so an emulator holding the blobs of earlier tests and benchmarks spends more
# CPU on each download the more it holds (with 67,000 blobs, 0.22 cores during a run instead of 0.05), and that CPU would be
# taken from the model on the same machine. Azure Blob Storage does not serve from the worker's cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
records=1440 batch=32 model="" threads=1 callers="$(nproc)" seconds=30 shared_blobs=0
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --callers) callers="$2"; shift 2 ;;
        --bench-seconds) seconds="$2"; shift 2 ;;
        --shared-blob-store) shared_blobs=1; shift ;;
        *) echo "usage: bash infra/bench-e2e.sh [--records N] [--batch N] [--model FILE] [--threads N] [--callers N] [--bench-seconds S] [--shared-blob-store]" >&2; exit 2 ;;
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
# The schema before the first submit (up.sh applies none; the silo would, but the run is submitted beside its start).
"$cli" db migrate | tail -1

work="$root/.local/bench-e2e"
mkdir -p "$work"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 30000)); }
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
if [ "$shared_blobs" = 0 ]; then
    azurite="$root/infra/local/node_modules/.bin/azurite-blob"
    [ -x "$azurite" ] || { echo "error: $azurite is missing; run bash infra/local/up.sh (or pass --shared-blob-store)" >&2; exit 1; }
    blob_port="$(free_port)"
    "$azurite" --blobHost 127.0.0.1 --blobPort "$blob_port" --inMemoryPersistence --skipApiVersionCheck --loose --silent --disableTelemetry \
        >"$work/azurite.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 60); do (exec 3<>"/dev/tcp/127.0.0.1/$blob_port") 2>/dev/null && break; sleep 0.5; done
    key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
    export HUBERTECG_BlobStorage__ConnectionString="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;"
    echo "blob store: a fresh in-memory Azurite on port $blob_port (--shared-blob-store uses the configured one)"
fi
if [ -z "$model" ]; then
    model="$work/small-random-164.onnx"
    [ -f "$model" ] || "$cli" model random --size small --labels 164 --out "$model" >/dev/null
fi

# psql takes the Npgsql connection string once its keys are translated.
pg="$(echo "${HUBERTECG_Postgres__ConnectionString:-Host=127.0.0.1;Port=55432;Username=hubert;Database=hubert}" | tr ';' '\n' | awk -F= 'tolower($1)=="host"{printf "host=%s ",$2} tolower($1)=="port"{printf "port=%s ",$2}
        tolower($1)=="username"{printf "user=%s ",$2} tolower($1)=="password"{printf "password=%s ",$2} tolower($1)=="database"{printf "dbname=%s ",$2}')"
load() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU seconds all processes have spent so far (user, nice, system, irq, softirq, steal), from /proc/stat.
busy() { awk '/^cpu /{printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / 100}' /proc/stat; }
# CPU seconds of the processes whose command name is $1, reaped children included (Postgres backends that ended).
cpu_of() {
    local total=0 pid
    for pid in $(pgrep -x "$1" || true); do
        total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
# Runs bench model; prints its windows/s. What other processes took meanwhile is reported, to tell a clean
# measurement from a disturbed one.
bench() {
    local out before after took TIMEFORMAT='%R %U %S'
    echo "load average before bench model: $(load)" >&2
    before="$(busy)"
    took="$({ time "$cli" bench model --model "$model" --batch "$batch" --threads "$threads" --parallel "$callers" \
        --seconds "$seconds" >"$work/bench.out"; } 2>&1)"
    after="$(busy)"
    out="$(cat "$work/bench.out")"
    echo "$out" >&2
    echo "$took" | awk -v b="$before" -v a="$after" '{
        printf "other processes during bench model: %.2f cores\n", (a - b - $2 - $3) / $1 }' >&2
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
pids+=("$silo_pid")
sleep 3
echo "load average before the run: $(load)"
run_id="$("$cli" run submit --input "bench/$prefix" --model "$model" --batch "$batch" --name "bench-e2e $prefix")"
cpu_before="$(awk '{print $14 + $15}' "/proc/$silo_pid/stat")"
busy_before="$(busy)"
pg_before="$(cpu_of postgres)" node_before="$(cpu_of node)"
start="$(date +%s.%N)"
# Waits with one small query a second rather than `run watch`, whose live progress bar is a second .NET process
# taking CPU from the worker (about 1% of this machine); the run's own timestamps are what is measured.
while :; do
    state="$(psql "$pg" -X -At -c "select state from runs where run_id = '$run_id'")"
    case "$state" in completed|failed|cancelled) break ;; esac
    sleep 1
done
psql "$pg" -X -At -F ' ' -c "select 'state=' || state, 'scored=' || records_done, 'quarantined=' || records_quarantined,
        'seconds=' || round(extract(epoch from finished_at - started_at)::numeric, 1) from runs where run_id = '$run_id'"
cpu_after="$(awk '{print $14 + $15}' "/proc/$silo_pid/stat")"
awk -v b="$busy_before" -v a="$(busy)" -v s="$start" -v e="$(date +%s.%N)" -v silo=$((cpu_after - cpu_before)) \
    -v pg=$(($(cpu_of postgres) - pg_before)) -v node=$(($(cpu_of node) - node_before)) 'BEGIN {
    printf "during the run: the silo %.2f cores, other processes %.2f cores (Postgres %.2f, Node.js/Azurite %.2f)\n",
        silo / 100 / (e - s), (a - b - silo / 100) / (e - s), pg / 100 / (e - s), node / 100 / (e - s) }'
echo "load average after the run: $(load)"
kill "$silo_pid" 2>/dev/null || true
wait "$silo_pid" 2>/dev/null || true
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
