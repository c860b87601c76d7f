#!/usr/bin/env bash
# Apply the schema migrations (infra/sql/NNNN_*.sql) to one database with the built command-line tool,
# `hubert-ecg db migrate`: the same implementation as a silo's Postgres:ApplyMigrations (HubertEcg.Storage.SchemaMigrator),
# each migration once in its own transaction, recorded in schema_migrations with its SHA-256. Safe to re-run; a
# migration whose file changed after it was applied is an error. Prints what it applied.
# Usage: migrate.sh ["<Npgsql connection string>"]
#   Without an argument: HUBERTECG_Postgres__ConnectionString, else .local/services.env (bash infra/local/up.sh),
#   else the tool's appsettings.json.
# Needs the Release build of the client: dotnet build src/Client/HubertEcg.Client.csproj -c Release
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cli="$root/src/Client/bin/Release/net10.0/hubert-ecg"
[ -x "$cli" ] || { echo "[migrate] error: $cli is missing; build it first: dotnet build src/Client/HubertEcg.Client.csproj -c Release" >&2; exit 1; }
if [ $# -gt 1 ]; then
    echo "usage: bash infra/local/migrate.sh [\"Host=...;Port=...;Database=...;Username=...\"]" >&2
    exit 2
fi
if [ $# -eq 1 ]; then
    export HUBERTECG_Postgres__ConnectionString="$1"
elif [ -z "${HUBERTECG_Postgres__ConnectionString:-}" ] && [ -f "${HUBERT_LOCAL_DIR:-$root/.local}/services.env" ]; then
    set -a
    # shellcheck source=/dev/null
    source "${HUBERT_LOCAL_DIR:-$root/.local}/services.env"
    set +a
fi
exec "$cli" db migrate
