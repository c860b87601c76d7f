#!/usr/bin/env bash
# The README's main command: bring up the private Postgres and Azurite, build, make a model (a random-weight
# small HuBERT-ECG with the 164-label head, or `--checkpoint DIR` to export real weights you downloaded),
# upload a synthetic mixed-format cohort with a few corrupt records, start a silo, submit a run, watch it,
# and print `scored=<n> quarantined=<q> seconds=<s>`. Safe to run twice (each run uses a fresh prefix).
# Options: --checkpoint DIR   --records N (default 240)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
checkpoint=""
records=240
while [ $# -gt 0 ]; do
    case "$1" in
        --checkpoint) checkpoint="$2"; shift 2 ;;
        --records) records="$2"; shift 2 ;;
        *) echo "usage: bash infra/demo.sh [--checkpoint DIR] [--records N]" >&2; exit 2 ;;
    esac
done

# shellcheck source=infra/prereqs.sh
source "$root/infra/prereqs.sh"
ensure_prereqs

bash infra/local/up.sh >/dev/null
set -a
# shellcheck source=/dev/null
source "$root/.local/services.env"
set +a

echo "== building"
dotnet build src/Client/HubertEcg.Client.csproj --configuration Release --verbosity quiet -nologo
dotnet build src/Silo/Host/HubertEcg.Silo.csproj --configuration Release --verbosity quiet -nologo
cli="$root/src/Client/bin/Release/net10.0/hubert-ecg"
silo="$root/src/Silo/Host/bin/Release/net10.0/hubert-ecg-silo"
demo="$root/.local/demo"
mkdir -p "$demo"

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
"$silo" >"$demo/silo.log" 2>&1 &
silo_pid=$!
trap 'kill "$silo_pid" 2>/dev/null || true; wait "$silo_pid" 2>/dev/null || true' EXIT

echo "== run"
run_id="$("$cli" run submit --input "demo/$prefix" --model "$model" --name "demo $prefix")"
echo "run id: $run_id"
"$cli" run watch "$run_id"
"$cli" run status "$run_id"

kill "$silo_pid" 2>/dev/null || true
wait "$silo_pid" 2>/dev/null || true
trap - EXIT
cat <<TXT

Where to look:
  $cli run status $run_id --json
  $cli results export --run $run_id --out $demo/results.csv
  psql "host=127.0.0.1 port=${HUBERT_PG_PORT:-55432} user=hubert dbname=hubert" -c "select reason, count(*) from quarantine group by 1"
  silo log: $demo/silo.log
Services still running; stop them with: bash infra/local/down.sh
TXT
