#!/usr/bin/env bash
# Measures, on a database loaded by load-scale-scores.sql (one live run of millions of rows), the SQL the dashboard
# issues (src/Silo/Host/Dashboard/DashboardQueries.cs and DashboardReviewQueries.cs, with their parameters written
# in; the run's own queries and those of measure-dashboard.sh), and the threshold changes (one label, all 164, a set
# of 164 inclusive thresholds activated; each rolled back). Each query runs once to warm the cache, then 5 times
# under EXPLAIN ANALYZE; prints the median planning and execution time in ms.
# Usage: measure-scale.sh "<libpq connection string>" [regex of the query names to run]
#   REPS (default 5): measured runs per query; SKIP: a regex of query names to leave out.
set -euo pipefail
conn="$1"
only="${2:-}"
psql_cmd=(psql "$conn" -v ON_ERROR_STOP=1 -q -X -At)
run="$("${psql_cmd[@]}" -c "select run_id from runs order by created_at desc limit 1")"
model="$("${psql_cmd[@]}" -c "select model_id from runs where run_id = '$run'")"
# A record of the run (the latest scored), and labels of low and high prevalence with their 50th flagged row (page 2).
record="$("${psql_cmd[@]}" -c "select quote_literal(record_id) from scores where run_id = '$run' order by scored_at desc limit 1")"
rare="$("${psql_cmd[@]}" -c "select code from dashboard_label_prevalence where run_id = '$run' and records_positive > 1000 order by records_positive limit 1")"
common="$("${psql_cmd[@]}" -c "select code from dashboard_label_prevalence where run_id = '$run' order by records_positive desc limit 1")"
mid="$("${psql_cmd[@]}" -c "select code from dashboard_label_prevalence where run_id = '$run' order by abs(records_positive - 100000) limit 1")"

progress_columns="run_id, name, state, model_id, cancel_requested, planning_complete, created_at, started_at, finished_at, updated_at, shards_planned, shards_done, shards_failed, records_planned, records_done, records_quarantined, records_failed, records_remaining, percent_done, rate_last_minute, rate_last_hour, eta_seconds, eta_at, last_written_minute, records_skipped"

flagged() { # code, limit, after (empty: first page; else "probability|record")
    local paged=false p=0 r="''"
    if [ -n "$3" ]; then paged=true; p="${3%%|*}"; r="$(printf "'%s'" "${3#*|}")"; fi
    echo "with t as (select t.position, t.threshold, t.inclusive from runs r join dashboard_model_label_thresholds t on t.model_id = r.model_id where r.run_id = '$run' and t.code = '$1') select x.record_id, x.probability, x.scored_at, x.scored_by_run from t cross join lateral (select s.record_id, s.probabilities[t.position + 1] as probability, s.scored_at, s.run_id as scored_by_run from scores s where s.run_id = '$run' union all select s.record_id, s.probabilities[t.position + 1], s.scored_at, s.run_id from run_reused_scores u join scores s on s.model_id = u.model_id and s.record_id = u.record_id where u.run_id = '$run') x where (x.probability > t.threshold or (t.inclusive and x.probability = t.threshold)) and (not $paged or x.probability < $p::real or (x.probability = $p::real and x.record_id collate \"C\" > $r)) order by x.probability desc, x.record_id collate \"C\" limit $2"
}
# The same page from the run's top-K list (0033_run_label_top.sql; DashboardQueries.FlaggedRecordsFromListAsync): the
# rows, then one row whose last column says whether the page is exact (else the dashboard reads the rows as above).
flagged_list() { # code, limit, after (as for flagged)
    local paged=false p=0 r="''"
    if [ -n "$3" ]; then paged=true; p="${3%%|*}"; r="$(printf "'%s'" "${3#*|}")"; fi
    echo "with t as (select t.position, t.threshold, t.inclusive, r.model_id, k.cuts[t.position + 1] as cut, k.cut_records[t.position + 1] as cut_record from runs r join dashboard_model_label_thresholds t on t.model_id = r.model_id join run_label_top_cuts k on k.run_id = r.run_id and k.state = 'complete' where r.run_id = '$run' and t.code = '$1'), c as (select e.probability, e.record_id from t join run_label_top e on e.run_id = '$run' and e.position = t.position where (e.probability > t.threshold or (t.inclusive and e.probability = t.threshold)) and (not $paged or e.probability < $p::real or (e.probability = $p::real and e.record_id > $r)) union select u.probability, u.record_id collate \"C\" from t join run_label_top_batches b on b.run_id = '$run' cross join lateral unnest(b.positions, b.record_ids, b.probabilities) as u (position, record_id, probability) where u.position = t.position and (u.probability > t.threshold or (t.inclusive and u.probability = t.threshold)) and (not $paged or u.probability < $p::real or (u.probability = $p::real and u.record_id collate \"C\" > $r))), page as (select x.record_id, x.probability, v.scored_at, v.scored_by_run from (select c.probability, c.record_id from c order by c.probability desc, c.record_id) x cross join t cross join lateral (select s.scored_at, s.run_id as scored_by_run from scores s where s.model_id = t.model_id and s.record_id = x.record_id collate \"default\" and s.probabilities[t.position + 1] = x.probability and (s.run_id = '$run' or exists (select 1 from run_reused_scores u where u.run_id = '$run' and u.model_id = s.model_id and u.record_id = s.record_id))) v order by x.probability desc, x.record_id limit $2) select p.record_id::text, p.probability, p.scored_at, p.scored_by_run, null::boolean as exact from page p union all select null, null, null, null, coalesce((select t.cut is null or t.threshold > t.cut or (t.threshold = t.cut and (not t.inclusive or t.cut_record is null)) or ((select count(*) from page) = $2 and (select run_label_top_at_or_above(p.probability, p.record_id, t.cut, t.cut_record) from page p order by p.probability, p.record_id desc limit 1)) from t), false)"
}
# The last row of page n (pages of 50) of the list: the keyset of page n + 1.
after_page() { "${psql_cmd[@]}" -F '|' -c "select probability, record_id from ($(flagged_list "$1" $((50 * $2)) "")) f where record_id is not null order by probability, record_id collate \"C\" desc limit 1"; }
page2() { "${psql_cmd[@]}" -F '|' -c "select probability, record_id from ($(flagged "$1" 50 "")) f order by probability, record_id collate \"C\" desc limit 1"; }

queries=(
    "runs list (50)|select $progress_columns from dashboard_run_progress order by created_at desc, run_id limit 50"
    "run progress|select $progress_columns from dashboard_run_progress where run_id = '$run'"
    "throughput, 60 min of the run|select minute, worker, records_scored, records_quarantined, records, records_per_second from dashboard_worker_throughput where run_id = '$run' and minute > (select max(minute) from dashboard_worker_throughput where run_id = '$run') - make_interval(mins => 60) order by minute, worker"
    "worker shards|select worker, shards_leased, shards_done, records_done, records_quarantined, next_lease_deadline, last_update, next_lease_deadline < now() as lease_expired from dashboard_worker_shards where run_id = '$run' order by worker"
    "shard states|select pending, leased, done, failed, total, expired_leases from dashboard_shard_states where run_id = '$run'"
    "shard states, all runs|select * from dashboard_shard_states"
    "quarantine reasons|select reason, records, first_at, last_at, example_record_id from dashboard_quarantine_reasons where run_id = '$run' order by records desc, reason"
    "prevalence, 164 labels|select position, code, name, label_group, threshold, threshold_is_default, records_scored, records_positive, prevalence from dashboard_label_prevalence where run_id = '$run' order by prevalence desc nulls last, position"
    "prevalence, one label over all runs|select run_name, records_scored, prevalence from dashboard_label_prevalence where code = '$common' order by run_name"
    "run label (${rare//|//})|select code, name, label_group, threshold, threshold_inclusive, threshold_is_default, threshold_set_name, threshold_set_version, records_scored, records_positive from dashboard_label_prevalence where run_id = '$run' and code = '$rare'"
    "flagged, page 1, ${rare//|//}|$(flagged "$rare" 50 "")"
    "flagged, page 2, ${rare//|//}|$(flagged "$rare" 50 "$(page2 "$rare")")"
    "flagged, page 1, ${common//|//}|$(flagged "$common" 50 "")"
    "flagged, page 2, ${common//|//}|$(flagged "$common" 50 "$(page2 "$common")")"
    "flagged (list), page 1, ${rare//|//}|$(flagged_list "$rare" 51 "")"
    "flagged (list), page 5, ${rare//|//}|$(flagged_list "$rare" 51 "$(after_page "$rare" 4)")"
    "flagged (list), page 1, ${mid//|//}|$(flagged_list "$mid" 51 "")"
    "flagged (list), page 5, ${mid//|//}|$(flagged_list "$mid" 51 "$(after_page "$mid" 4)")"
    "flagged (list), page 1, ${common//|//}|$(flagged_list "$common" 51 "")"
    "flagged (list), page 5, ${common//|//}|$(flagged_list "$common" 51 "$(after_page "$common" 4)")"
    "run record|select s.record_id, s.model_id, mo.name as model_name, mo.untrained as model_untrained, r.run_id, r.name as run_name, s.run_id as scored_by_run, sr.name as scored_by_run_name, sr.input_container as container, s.source_blob, s.source_etag, s.scored_at, s.windows_used, sr.preprocessing_profile from runs r join scores s on s.model_id = r.model_id and s.record_id = $record join runs sr on sr.run_id = s.run_id join models mo on mo.model_id = s.model_id where r.run_id = '$run' and (s.run_id = r.run_id or exists (select 1 from run_reused_scores u where u.run_id = r.run_id and u.model_id = s.model_id and u.record_id = s.record_id))"
    "record findings (20)|select t.code, t.name, t.label_group, u.probability, t.threshold, t.inclusive as threshold_inclusive, (u.probability > t.threshold or (t.inclusive and u.probability = t.threshold)) as positive from scores s cross join lateral unnest(s.probabilities) with ordinality as u (probability, ord) join dashboard_model_label_thresholds t on t.model_id = s.model_id and t.position = u.ord - 1 where s.model_id = '$model' and s.record_id = $record order by positive desc, u.probability desc, t.position limit 20"
    "findings, one record (view)|select rank, code, name, probability from dashboard_record_findings where model_id = '$model' and record_id = $record order by rank"
    "top findings, latest 50 of a run|select record_id, codes, probabilities from dashboard_record_top_findings where run_id = '$run' order by scored_at desc limit 50"
    "worker throughput, last hour, all runs|select minute, worker, records from dashboard_worker_throughput where minute > now() - interval '1 hour' order by minute, worker"
)

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-44s %10s %10s\n' "query" "plan ms" "exec ms"
for entry in "${queries[@]}"; do
    label="${entry%%|*}"
    sql="${entry#*|}"   # names show a code's '|' as '/' (PAC/SVPB), so the first '|' ends the name
    if [ -n "$only" ] && ! grep -qE -- "$only" <<< "$label"; then continue; fi
    if [ -n "${SKIP:-}" ] && grep -qE -- "$SKIP" <<< "$label"; then continue; fi
    "${psql_cmd[@]}" -c "$sql" > /dev/null
    plans=()
    execs=()
    for _ in $(seq 1 "${REPS:-5}"); do
        out="$("${psql_cmd[@]}" -c "explain (analyze, timing off) $sql")"
        plans+=("$(grep -oP 'Planning Time: \K[0-9.]+' <<< "$out")")
        execs+=("$(grep -oP 'Execution Time: \K[0-9.]+' <<< "$out")")
    done
    printf '%-44s %10s %10s\n' "$label" "$(printf '%s\n' "${plans[@]}" | median)" "$(printf '%s\n' "${execs[@]}" | median)"
done

if [ -n "$only" ] && ! grep -qE -- "$only" <<< "threshold"; then exit 0; fi
# Threshold changes, each rolled back, 3 times (psql \timing of the statement, triggers included).
timed() { "${psql_cmd[@]}" -c "begin" "$@" -c "\\timing on" -c "$changing" -c "\\timing off" -c "rollback" | grep -oP 'Time: \K[0-9.]+'; }
for change in "one label (insert into label_thresholds values (50, 0.3))|insert into label_thresholds (position, threshold) values (50, 0.3)" \
              "all 164 labels (0.3)|insert into label_thresholds (position, threshold) select position, 0.3 from labels"; do
    label="${change%%|*}"
    changing="${change#*|}"
    times=()
    for _ in 1 2 3; do times+=("$(timed)"); done
    printf '%-44s %10s %10s   (%s)\n' "threshold change, $label" "-" "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
done
set_id="$("${psql_cmd[@]}" -c "select md5(random()::text)::uuid")"
changing="select threshold_set_activate('$set_id')"
times=()
for _ in 1 2 3; do
    times+=("$(timed -c "insert into threshold_sets (set_id, model_id, name, version, rule, scores_source, labels_file, labels_sha256, cohort_size) values ('$set_id', '$model', 'scale', 1, 'youden', 'scores', 'labels.csv', repeat('0', 64), 1000)" \
                     -c "insert into threshold_set_labels (set_id, position, threshold) select '$set_id', position, (1 + position % 50) / 100.0 from labels")")
done
printf '%-44s %10s %10s   (%s)\n' "threshold change, a set of 164 activated" "-" "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
