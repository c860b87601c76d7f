#!/usr/bin/env bash
# Measures the dashboard views' example queries (docs/queries.md) on a database filled by generate-scores.sql:
# each query runs once to warm the cache, then 5 times under EXPLAIN ANALYZE; prints the median planning and
# execution time in ms. Also times the write path (a 1,000-row scores batch with and without the dashboard
# triggers) and a threshold change (recount of one label), both rolled back.
# Usage: measure-dashboard.sh "<libpq connection string>"
set -euo pipefail
conn="$1"
psql_cmd=(psql "$conn" -v ON_ERROR_STOP=1 -q -X -At)
live="$("${psql_cmd[@]}" -c "select run_id from runs order by created_at desc limit 1")"
# A record id is data (any text): Postgres quotes it as a literal; a run id is a uuid.
record="$("${psql_cmd[@]}" -c "select quote_literal(record_id) from scores where run_id = '$live' order by scored_at desc limit 1")"

queries=(
    "progress, all runs|select name, state, percent_done, rate_last_minute, rate_last_hour, eta_seconds from dashboard_run_progress order by created_at desc"
    "progress, one run|select * from dashboard_run_progress where run_id = '$live'"
    "prevalence, one run|select code, name, threshold, records_positive, prevalence from dashboard_label_prevalence where run_id = '$live' order by prevalence desc"
    "prevalence, one label over all runs|select run_name, records_scored, prevalence from dashboard_label_prevalence where code = 'AF' order by run_name"
    "worker throughput, last hour|select minute, worker, records from dashboard_worker_throughput where minute > now() - interval '1 hour' order by minute, worker"
    "worker shards, one run|select * from dashboard_worker_shards where run_id = '$live' order by worker"
    "shard states, all runs|select * from dashboard_shard_states"
    "quarantine reasons, one run|select reason, records, last_at from dashboard_quarantine_reasons where run_id = '$live' order by records desc"
    "findings, one record|select rank, code, name, probability from dashboard_record_findings where model_id = 'bench-model' and record_id = $record order by rank"
    "top findings, latest 50 of a run|select record_id, codes, probabilities from dashboard_record_top_findings where run_id = '$live' order by scored_at desc limit 50"
)

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-40s %10s %10s\n' "query" "plan ms" "exec ms"
for entry in "${queries[@]}"; do
    label="${entry%%|*}"
    sql="${entry#*|}"
    "${psql_cmd[@]}" -c "$sql" > /dev/null
    plans=()
    execs=()
    for _ in 1 2 3 4 5; do
        out="$("${psql_cmd[@]}" -c "explain (analyze, timing off) $sql")"
        plans+=("$(grep -oP 'Planning Time: \K[0-9.]+' <<< "$out")")
        execs+=("$(grep -oP 'Execution Time: \K[0-9.]+' <<< "$out")")
    done
    printf '%-40s %10s %10s\n' "$label" "$(printf '%s\n' "${plans[@]}" | median)" "$(printf '%s\n' "${execs[@]}" | median)"
done

batch="insert into scores (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at)
select 'bench-model', 'extra-' || i, '$live', array(select ((0.001 + 0.999 * random()) ^ (1 + j % 9))::real from generate_series(0, 163) j where i >= 0),
       array_fill(0.125::real, array[16]), 4, 'extra/' || i, 'e', now() from generate_series(1, 1000) i"
for mode in origin replica; do
    times=()
    for _ in 1 2 3 4 5; do
        out="$("${psql_cmd[@]}" -c "begin" -c "set local session_replication_role = $mode" -c "explain (analyze, timing off) $batch" -c "rollback")"
        total="$(grep -oP 'Execution Time: \K[0-9.]+' <<< "$out")"
        times+=("$total")
    done
    label="1000-row scores batch, triggers $([ "$mode" = origin ] && echo on || echo off)"
    printf '%-40s %10s %10s\n' "$label" "-" "$(printf '%s\n' "${times[@]}" | median)"
done

# A busy live run: 1,000 records a second over the last 2 minutes (120,000 uncommitted rows, so no index-only
# scans), so the last-minute count has work whatever second of the minute it runs at.
burst="insert into scores (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at)
select 'bench-model', 'burst-' || i, '$live', s.probabilities, s.embedding, 4, 'burst/' || i, 'e', now() - interval '1 millisecond' * i
from generate_series(0, 119999) i cross join lateral (select probabilities, embedding from scores where run_id = '$live' limit 1) s"
explain_busy=()
for _ in 1 2 3 4 5; do explain_busy+=(-c "explain (analyze, timing off) select * from dashboard_run_progress where run_id = '$live'"); done
out="$("${psql_cmd[@]}" -c "begin" -c "$burst" "${explain_busy[@]}" -c "rollback")"
printf '%-40s %10s %10s\n' "progress, one run, 1000 records/s (s=$(date +%S))" \
    "$(grep -oP 'Planning Time: \K[0-9.]+' <<< "$out" | tail -4 | median)" "$(grep -oP 'Execution Time: \K[0-9.]+' <<< "$out" | tail -4 | median)"

out="$("${psql_cmd[@]}" -c "begin" -c "explain (analyze, timing off) insert into label_thresholds (position, threshold) values (50, 0.3)" -c "rollback")"
printf '%-40s %10s %10s\n' "threshold change, one label (recount)" "-" "$(grep -oP 'Execution Time: \K[0-9.]+' <<< "$out")"
