#!/usr/bin/env bash
# The README's test command: install what is missing, start the private Postgres and Azurite,
# run every test in the solution against them, stop the services, and exit with the tests' status.
# Extra arguments go to `dotnet test` (e.g. --filter Category=Chaos).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=infra/prereqs.sh
source "$root/infra/prereqs.sh"
ensure_prereqs --with-chromium

settings="$(bash infra/local/up.sh)"
trap 'bash "$root/infra/local/down.sh" || true' EXIT
HUBERT_TEST_PG="$(sed -n 's/^Postgres:ConnectionString=//p' <<<"$settings")"
HUBERT_TEST_BLOB="$(sed -n 's/^BlobStorage:ConnectionString=//p' <<<"$settings")"
export HUBERT_TEST_PG HUBERT_TEST_BLOB

# The GPU flavour (-p:OnnxRuntimeFlavor=Gpu, Microsoft.ML.OnnxRuntime.Gpu.Linux) builds into obj/gpu and bin/gpu
# beside the CPU one; its model tests (parity, scorer, the CUDA errors) run on its CPU provider.
# HUBERT_TEST_GPU_FLAVOUR=0 leaves it out. A --filter given to this script applies to that run too.
gpu_flavour="${HUBERT_TEST_GPU_FLAVOUR:-1}"
gpu_tests=tests/HubertEcg.Inference.Tests/HubertEcg.Inference.Tests.csproj
gpu_filter="FullyQualifiedName~HubertEcg.Inference.Tests.Model"
gpu_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --filter) gpu_filter="($gpu_filter)&(${args[$((i + 1))]})"; i=$((i + 1)) ;;
        --filter=*) gpu_filter="($gpu_filter)&(${args[$i]#--filter=})" ;;
        *) gpu_args+=("${args[$i]}") ;;
    esac
done

dotnet restore HubertEcg.sln --verbosity quiet
dotnet build HubertEcg.sln --no-restore --configuration Release --verbosity quiet -nologo
if [ "$gpu_flavour" != 0 ]; then
    dotnet build "$gpu_tests" --configuration Release -p:OnnxRuntimeFlavor=Gpu --verbosity quiet -nologo
fi
results="$root/.local/test-results"
rm -rf "$results"
set +e
dotnet test HubertEcg.sln --no-build --configuration Release --logger "console;verbosity=normal" \
    --logger "trx" --results-directory "$results" "$@" 2>&1 | tee "$root/.local/test-output.log"
status=${PIPESTATUS[0]}
if [ "$gpu_flavour" != 0 ]; then
    echo "== GPU flavour (Microsoft.ML.OnnxRuntime.Gpu.Linux) on its CPU provider: $gpu_filter"
    dotnet test "$gpu_tests" --no-build --configuration Release -p:OnnxRuntimeFlavor=Gpu \
        --logger "console;verbosity=normal" --logger "trx;LogFileName=gpu-flavour.trx" --results-directory "$results" \
        --filter "$gpu_filter" "${gpu_args[@]}" 2>&1 | tee -a "$root/.local/test-output.log"
    gpu_status=${PIPESTATUS[0]}
    [ "$gpu_status" = 0 ] || status=$gpu_status
fi
set -e
# One summary line over all test assemblies (from the TRX files), in the plain form CI reads.
passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
    [ -f "$trx" ] || continue
    counters="$(grep -o '<Counters [^>]*>' "$trx" | head -1)"
    get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
    passed=$((passed + $(get passed))); failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
    skipped=$((skipped + $(get notExecuted)))
done
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$status" = 0 ] && [ "$passed" = 0 ]; then echo "error: no test ran" >&2; status=1; fi
exit "$status"
