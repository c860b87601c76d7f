#!/usr/bin/env bash
# Apply infra/sql/NNNN_*.sql in order to one database, each once, recorded in schema_migrations with
# its SHA-256. Safe to re-run; a migration whose file changed after it was applied is an error.
# Usage: migrate.sh "<libpq connection string>"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sql_dir="$(cd "$here/../sql" && pwd)"
conn="$1"
export PGOPTIONS="-c client_min_messages=warning"
psql_cmd=(psql "$conn" -v ON_ERROR_STOP=1 -q -X)
"${psql_cmd[@]}" -c "create table if not exists schema_migrations (version text primary key, name text not null, sha256 text not null, applied_at timestamptz not null default now())"
for f in $(ls "$sql_dir"/[0-9]*.sql | sort); do
    file="$(basename "$f")"
    version="${file%%_*}"
    sum="$(sha256sum "$f" | cut -d' ' -f1)"
    applied="$("${psql_cmd[@]}" -tAc "select sha256 from schema_migrations where version = '$version'")"
    if [ -n "$applied" ]; then
        [ "$applied" = "$sum" ] || { echo "[migrate] error: $file changed after it was applied (recorded $applied, now $sum)" >&2; exit 1; }
        continue
    fi
    echo "[migrate] applying $file" >&2
    "${psql_cmd[@]}" -1 -f "$f" -c "insert into schema_migrations(version, name, sha256) values ('$version', '$file', '$sum')"
done
