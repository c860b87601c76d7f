#!/usr/bin/env bash
# The README's main command: bring up the private Postgres and Azurite, build, make a model (a random-weight
# small HuBERT-ECG with the 164-label head, or `--checkpoint DIR` to export real weights you downloaded),
# upload a synthetic mixed-format cohort with a few corrupt records, start a silo, submit a run, watch it,
# and print `scored=<n> quarantined=<q> seconds=<s>`. Safe to run twice (each run uses a fresh prefix).
# The silo serves the web dashboard on 127.0.0.1 (port HUBERT_DASHBOARD_PORT, default 8480, or one the OS picks
# when that is taken) and the demo prints its address; --keep-silo leaves the silo and dashboard up after the run.
# The client submits, watches and reads the run through the silo's gateway (HUBERT_GATEWAY_PORT, default 30000, the
# silo's Silo:GatewayPort; its silo-to-silo port is HUBERT_SILO_PORT, default 11111), and says so (`via cluster ...`).
# The services are those of infra/local/up.sh for the same environment: HUBERT_LOCAL_DIR (default <checkout>/.local),
# HUBERT_PG_PORT and HUBERT_BLOB_PORT; the demo talks to exactly those (their settings are read from
# $HUBERT_LOCAL_DIR/services.env, which up.sh writes) and keeps its files in $HUBERT_LOCAL_DIR/demo.
# --services-only brings the services up, prints the two connection settings the demo would use and exits.
# Options: --checkpoint DIR   --records N (default 240)   --keep-silo   --services-only
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
local_dir="${HUBERT_LOCAL_DIR:-$root/.local}"
checkpoint=""
records=240
keep_silo=""
services_only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --checkpoint) checkpoint="$2"; shift 2 ;;
        --records) records="$2"; shift 2 ;;
        --keep-silo) keep_silo=1; shift ;;
        --services-only) services_only=1; shift ;;
        *) echo "usage: bash infra/demo.sh [--checkpoint DIR] [--records N] [--keep-silo] [--services-only]" >&2; exit 2 ;;
    esac
done

# shellcheck source=infra/prereqs.sh
source "$root/infra/prereqs.sh"
ensure_prereqs

# up.sh reads HUBERT_LOCAL_DIR and the ports from the environment and writes the settings of the services it started
# (or found running) to $local_dir/services.env: the demo uses those, never another checkout's or the defaults.
HUBERT_LOCAL_DIR="$local_dir" bash infra/local/up.sh >/dev/null
unset HUBERTECG_Postgres__ConnectionString HUBERTECG_BlobStorage__ConnectionString
set -a
# shellcheck source=/dev/null
source "$local_dir/services.env"
set +a
if [ -n "$services_only" ]; then
    echo "Postgres:ConnectionString=$HUBERTECG_Postgres__ConnectionString"
    echo "BlobStorage:ConnectionString=$HUBERTECG_BlobStorage__ConnectionString"
    exit 0
fi

echo "== building"
dotnet build src/Client/HubertEcg.Client.csproj --configuration Release --verbosity quiet -nologo
dotnet build src/Silo/Host/HubertEcg.Silo.csproj --configuration Release --verbosity quiet -nologo
cli="$root/src/Client/bin/Release/net10.0/hubert-ecg"
silo="$root/src/Silo/Host/bin/Release/net10.0/hubert-ecg-silo"
demo="$local_dir/demo"
mkdir -p "$demo"

echo "== schema"
# up.sh runs before anything is built, so the schema is applied here, by the built tool (SchemaMigrator).
"$cli" db migrate

echo "== checking the services"
"$cli" smoke | tail -1

echo "== model"
if [ -n "$checkpoint" ]; then
    model="$demo/checkpoint.onnx"
    "$cli" model export --checkpoint "$checkpoint" --out "$model"
else
    model="$demo/small-random-164.onnx"
    [ -f "$model" ] || "$cli" model random --size small --labels 164 --out "$model"
fi
"$cli" model info "$model" | head -12

echo "== cohort"
prefix="cohort-$(date -u +%Y%m%dT%H%M%S)"
"$cli" cohort synth --input "demo/$prefix" --records "$records"

echo "== silo"
# The dashboard on loopback without a token (the silo refuses any other address without one).
dashboard_port="${HUBERT_DASHBOARD_PORT:-8480}"
if (exec 3<>"/dev/tcp/127.0.0.1/$dashboard_port") 2>/dev/null; then
    dashboard_port=0 # taken: let the OS choose
fi
gateway_port="${HUBERT_GATEWAY_PORT:-30000}"
silo_port="${HUBERT_SILO_PORT:-11111}"
for port in "$gateway_port" "$silo_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "error: port $port is taken (another silo?); choose others with HUBERT_GATEWAY_PORT and HUBERT_SILO_PORT" >&2
        exit 1
    fi
done
"$silo" --Dashboard:Enabled=true --Dashboard:Urls="http://127.0.0.1:$dashboard_port" \
    --Silo:GatewayPort="$gateway_port" --Silo:SiloPort="$silo_port" >"$demo/silo.log" 2>&1 &
silo_pid=$!
trap 'kill "$silo_pid" 2>/dev/null || true; wait "$silo_pid" 2>/dev/null || true' EXIT
# The client's cluster settings: the silo's gateway (the client falls back to Postgres, and says so, without it),
# with time to spare for a small machine that the demo's own scoring keeps busy (the default is 5 s).
cluster=(--set "Cluster:Gateways:0=127.0.0.1:$gateway_port" --set "Cluster:ConnectTimeout=00:00:30")
dashboard_url=""
for _ in $(seq 1 240); do
    dashboard_url="$(sed -n 's/.*Dashboard listening on \(http:[^ ]*\).*/\1/p' "$demo/silo.log" | head -1)"
    # Up when the dashboard listens and the gateway takes connections.
    [ -n "$dashboard_url" ] && (exec 3<>"/dev/tcp/127.0.0.1/$gateway_port") 2>/dev/null && break
    if ! kill -0 "$silo_pid" 2>/dev/null; then
        echo "error: the silo exited; the end of its log ($demo/silo.log):" >&2
        tail -20 "$demo/silo.log" >&2
        exit 1
    fi
    sleep 0.5
done
echo "dashboard: ${dashboard_url:-(not up yet; see $demo/silo.log)}  (cluster health: ${dashboard_url}/orleans/)"
echo "gateway: 127.0.0.1:$gateway_port"

echo "== run"
run_id="$("$cli" run submit "${cluster[@]}" --input "demo/$prefix" --model "$model" --name "demo $prefix")"
echo "run id: $run_id"
"$cli" run watch "${cluster[@]}" "$run_id"
"$cli" run status "${cluster[@]}" "$run_id"

if [ -n "$keep_silo" ]; then
    echo
    echo "The silo and its dashboard keep running: $dashboard_url  (Ctrl-C stops them)"
    wait "$silo_pid" || true
    exit 0
fi
kill "$silo_pid" 2>/dev/null || true
wait "$silo_pid" 2>/dev/null || true
trap - EXIT
cat <<TXT

Where to look (the silo is stopped, so the client answers from Postgres):
  $cli run status $run_id --json
  $cli results export --run $run_id --out $demo/results.csv
  psql "host=127.0.0.1 port=${HUBERT_PG_PORT:-55432} user=hubert dbname=hubert" -c "select reason, count(*) from quarantine group by 1"
  silo log: $demo/silo.log
  dashboard: bash infra/demo.sh --keep-silo leaves the silo up to browse $dashboard_url
Services still running; stop them with: HUBERT_LOCAL_DIR=$local_dir bash infra/local/down.sh
TXT
