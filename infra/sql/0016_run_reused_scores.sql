-- Records a run covered without writing their rows (issue 12, finding 3).
-- A score row is kept once per (model, record) and belongs to the run that first wrote it (or that replaced it
-- because the record's source blob changed). A later run that scores the same record from the same source version
-- writes nothing new; it lists the record here instead, so that its counters, its export and its dashboard
-- summaries cover every record it scored, and its export says which run wrote each row (the row's run_id).
create table run_reused_scores (
    run_id uuid not null references runs (run_id) on delete cascade,
    model_id text not null,
    record_id text not null,
    reused_at timestamptz not null default now(),
    primary key (run_id, model_id, record_id),
    foreign key (model_id, record_id) references scores (model_id, record_id) on delete cascade
);

-- The dashboard summaries of a run include the records it reused: one more scored record in the minute it reused
-- it, and its positives against the current thresholds (probabilities read from the row it reused).
create function dashboard_reused_added() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    writer text := dashboard_writer_name();
    positions integer[] := array(select position from dashboard_label_thresholds order by position);
    thresholds real[] := array(select threshold from dashboard_label_thresholds order by position);
begin
    insert into run_progress_minutes as m (run_id, minute, records_scored)
    select n.run_id, date_trunc('minute', n.reused_at), count(*)
    from added_rows n
    group by 1, 2
    order by 1, 2
    on conflict (run_id, minute) do update set records_scored = m.records_scored + excluded.records_scored;

    insert into worker_progress_minutes as w (run_id, minute, worker, records_scored)
    select n.run_id, date_trunc('minute', n.reused_at), writer, count(*)
    from added_rows n
    group by 1, 2
    order by 1, 2
    on conflict (run_id, minute, worker) do update set records_scored = w.records_scored + excluded.records_scored;

    insert into run_label_positives as p (run_id, position, positives)
    select n.run_id, t.position, count(*)
    from unnest(positions, thresholds) as t (position, threshold)
    cross join added_rows n
    join scores s on s.model_id = n.model_id and s.record_id = n.record_id
    where s.probabilities[t.position + 1] > t.threshold
    group by 1, 2
    order by 1, 2
    on conflict (run_id, position) do update set positives = p.positives + excluded.positives;

    return null;
end
$fn$;

create trigger run_reused_scores_dashboard_insert after insert on run_reused_scores
    referencing new table as added_rows for each statement execute function dashboard_reused_added();

-- A threshold change recounts a label's positives from the rows each run wrote and the rows it reused.
create or replace function dashboard_recount_labels(p_positions integer[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    lock table scores in share mode;
    lock table run_reused_scores in share mode;
    delete from run_label_positives where position = any (p_positions);
    insert into run_label_positives (run_id, position, positives)
    select x.run_id, t.position, count(*)
    from (select s.run_id, s.probabilities from scores s
          union all
          select u.run_id, s.probabilities from run_reused_scores u
          join scores s on s.model_id = u.model_id and s.record_id = u.record_id) x
    cross join (select position, threshold from dashboard_label_thresholds where position = any (p_positions)) t
    where x.probabilities[t.position + 1] > t.threshold
    group by 1, 2;
end
$fn$;

revoke execute on function dashboard_recount_labels(integer[]) from public;
