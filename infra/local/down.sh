#!/usr/bin/env bash
# Stop the services started by up.sh. Data stays in .local unless --wipe is given, which then deletes the Postgres
# cluster and the Azurite store (the next up.sh starts from empty; Azurite looks blobs up by scanning its metadata,
# so an emulator that has collected many cohorts gets slower). Safe to run when nothing is running.
set -euo pipefail
wipe=0
case "${1:-}" in
    "") ;;
    --wipe) wipe=1 ;;
    *) echo "usage: bash infra/local/down.sh [--wipe]" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
local_dir="${HUBERT_LOCAL_DIR:-$root/.local}"
pg_data="$local_dir/pg/data"
az_pid="$local_dir/azurite/azurite.pid"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -1)"
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -n "$pg_bin" ] && [ -f "$pg_data/PG_VERSION" ] && run_pg "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    echo "[local-services] stopping PostgreSQL" >&2
    run_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null
fi
if [ -f "$az_pid" ]; then
    pid="$(cat "$az_pid")"
    if kill -0 "$pid" 2>/dev/null; then
        echo "[local-services] stopping Azurite" >&2
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$az_pid"
fi
if [ "$wipe" = 1 ]; then
    echo "[local-services] deleting $local_dir/pg and $local_dir/azurite" >&2
    rm -rf "$local_dir/pg" "$local_dir/azurite" "$local_dir/services.env"
fi
