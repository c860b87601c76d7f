#!/usr/bin/env bash
# Bring up the project's private local services: a PostgreSQL cluster and the Azurite blob emulator,
# both with their data under <checkout>/.local. Installs what is missing, is safe to run twice, creates
# the empty database, and prints the connection settings (also written to .local/services.env for other
# scripts and the test fixtures). It applies no schema: it runs before anything is built. The schema comes
# from the built tool (bash infra/local/migrate.sh, which runs `hubert-ecg db migrate`), from a silo started
# with Postgres:ApplyMigrations (the default), or, for tests, from each fixture's own database.
#
# Environment: HUBERT_PG_PORT (default 55432), HUBERT_BLOB_PORT (default 10010),
#              HUBERT_LOCAL_DIR (default <checkout>/.local).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
local_dir="${HUBERT_LOCAL_DIR:-$root/.local}"
pg_port="${HUBERT_PG_PORT:-55432}"
blob_port="${HUBERT_BLOB_PORT:-10010}"
pg_data="$local_dir/pg/data"
pg_sock="$local_dir/pg/socket"
pg_log="$local_dir/pg/postgres.log"
az_dir="$local_dir/azurite"
az_log="$local_dir/azurite/azurite.log"
az_pid="$local_dir/azurite/azurite.pid"
pg_user=hubert
pg_db=hubert
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
az_account=devstoreaccount1
az_key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { echo "[local-services] $*" >&2; }
die() { echo "[local-services] error: $*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- install what is missing -------------------------------------------------------------
pg_bin=""
find_pg_bin() {
    pg_bin=""
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then pg_bin="$d"; return 0; fi
    done
    return 1
}
if ! find_pg_bin || ! command -v psql >/dev/null 2>&1; then
    log "installing PostgreSQL (Debian package postgresql)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
    find_pg_bin || die "PostgreSQL binaries not found after installing the postgresql package"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "installing Node.js and npm (Debian packages)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x "$here/node_modules/.bin/azurite-blob" ]; then
    log "installing Azurite (npm, pinned in infra/local/package.json)"
    if [ -f "$here/package-lock.json" ]; then
        (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
    else
        (cd "$here" && npm install --no-audit --no-fund --loglevel=error >&2)
    fi
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- PostgreSQL ---------------------------------------------------------------------------
mkdir -p "$local_dir/pg" "$pg_sock"
# initdb and postgres refuse to run as root: run them as the postgres system user in that case.
run_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
    chown -R postgres: "$local_dir/pg"
    # postgres must be able to reach the data folder through the checkout's parents.
    d="$local_dir"; while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d="$(dirname "$d")"; done
fi
if [ ! -f "$pg_data/PG_VERSION" ]; then
    log "initialising a private PostgreSQL cluster in $pg_data"
    run_pg "$pg_bin/initdb" -D "$pg_data" -U "$pg_user" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi
pg_running() { run_pg "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; }
if pg_running; then
    # The settings printed below must name the services that run, not the ports asked for this time.
    running_port="$(sed -n 4p "$pg_data/postmaster.pid" 2>/dev/null || true)"
    if [ -n "$running_port" ] && [ "$running_port" != "$pg_port" ]; then
        die "the PostgreSQL of $local_dir already runs on port $running_port, not $pg_port: set HUBERT_PG_PORT=$running_port, or stop it first (HUBERT_LOCAL_DIR=$local_dir bash infra/local/down.sh)"
    fi
    log "PostgreSQL already running (port $pg_port)"
else
    if port_in_use "$pg_port"; then
        die "port $pg_port is already taken by another process; set HUBERT_PG_PORT to a free port"
    fi
    log "starting PostgreSQL on 127.0.0.1:$pg_port"
    # glibc's malloc keeps freed memory of up to 64 MB in the process instead of handing blocks under 16 MB back to
    # the kernel: a statement that adds score rows keeps them in a tuplestore for its triggers (a few MB a batch),
    # and memory fresh from the kernel is paid for in page faults on every statement, which on a virtual machine cost
    # the result writer's COPY about a seventh of the server's time per row (docs/benchmarks.md, issue 14).
    run_pg env MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=67108864 "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_sock -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { tail -20 "$pg_log" >&2; die "PostgreSQL did not start (log: $pg_log)"; }
fi
for _ in $(seq 1 60); do
    if "$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -q; then break; fi
    sleep 0.5
done
"$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -q || die "PostgreSQL is not answering on port $pg_port"
psql_cmd=(psql -h 127.0.0.1 -p "$pg_port" -U "$pg_user" -v ON_ERROR_STOP=1 -q -X)
if ! "${psql_cmd[@]}" -d postgres -tAc "select 1 from pg_database where datname = '$pg_db'" | grep -q 1; then
    "${psql_cmd[@]}" -d postgres -c "create database $pg_db"
fi

# --- Azurite ------------------------------------------------------------------------------
mkdir -p "$az_dir/data"
az_running() { [ -f "$az_pid" ] && kill -0 "$(cat "$az_pid")" 2>/dev/null; }
az_port_file="$local_dir/azurite/azurite.port"
if az_running; then
    running_port="$(cat "$az_port_file" 2>/dev/null || true)"
    if [ -n "$running_port" ] && [ "$running_port" != "$blob_port" ]; then
        die "the Azurite of $local_dir already runs on port $running_port, not $blob_port: set HUBERT_BLOB_PORT=$running_port, or stop it first (HUBERT_LOCAL_DIR=$local_dir bash infra/local/down.sh)"
    fi
    log "Azurite already running (port $blob_port)"
else
    if port_in_use "$blob_port"; then
        die "port $blob_port is already taken by another process; set HUBERT_BLOB_PORT to a free port"
    fi
    log "starting Azurite blob service on 127.0.0.1:$blob_port"
    nohup "$here/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$blob_port" \
        --location "$az_dir/data" --skipApiVersionCheck --loose --silent --disableTelemetry >"$az_log" 2>&1 &
    echo $! >"$az_pid"
    echo "$blob_port" >"$az_port_file"
fi
for _ in $(seq 1 120); do
    if port_in_use "$blob_port"; then break; fi
    if ! az_running; then tail -20 "$az_log" >&2; die "Azurite exited (log: $az_log)"; fi
    sleep 0.5
done
port_in_use "$blob_port" || die "Azurite is not answering on port $blob_port"

pg_conn="Host=127.0.0.1;Port=$pg_port;Username=$pg_user;Database=$pg_db"
blob_conn="DefaultEndpointsProtocol=http;AccountName=$az_account;AccountKey=$az_key;BlobEndpoint=http://127.0.0.1:$blob_port/$az_account;"
cat >"$local_dir/services.env" <<ENV
HUBERTECG_Postgres__ConnectionString='$pg_conn'
HUBERTECG_BlobStorage__ConnectionString='$blob_conn'
ENV
echo "Postgres:ConnectionString=$pg_conn"
echo "BlobStorage:ConnectionString=$blob_conn"
