#!/usr/bin/env bash
# The README's main command: bring up the private Postgres and Azurite, build, and run the job on
# embedded defaults. Safe to run twice; leaves the services running (stop: bash infra/local/down.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=infra/prereqs.sh
source "$root/infra/prereqs.sh"
ensure_prereqs

bash infra/local/up.sh >/dev/null
set -a
# shellcheck source=/dev/null
source "$root/.local/services.env"
set +a
dotnet build src/Client/HubertEcg.Client.csproj --configuration Release --verbosity quiet -nologo
cli="$root/src/Client/bin/Release/net10.0/hubert-ecg"
"$cli" smoke "$@"
echo "services still running; stop them with: bash infra/local/down.sh"
