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

dotnet restore HubertEcg.sln --verbosity quiet
dotnet build HubertEcg.sln --no-restore --configuration Release --verbosity quiet -nologo
results="$root/.local/test-results"
rm -rf "$results"
set +e
dotnet test HubertEcg.sln --no-build --configuration Release --logger "console;verbosity=normal" \
    --logger "trx" --results-directory "$results" "$@" 2>&1 | tee "$root/.local/test-output.log"
status=${PIPESTATUS[0]}
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
