-- Dashboard queries: views for Grafana's Postgres source, Metabase and psql, the summary tables that keep the
-- progress and prevalence views fast on millions of score rows, and a read-only role for dashboards.
-- Plain SQL in one transaction (applied by SchemaMigrator and infra/local/migrate.sh). docs/queries.md shows
-- each view with an example and its latency.
--
-- How the summaries stay exact: statement-level triggers with transition tables on scores and quarantine add
-- (or, on delete, subtract) one batch at a time, so a writer's COPY-then-insert batch costs one small upsert
-- per touched (run, minute) and per (run, label) that had a positive in the batch. Upserts touch rows in key
-- order, so concurrent writers of one run queue behind each other briefly instead of deadlocking.

-- Per-label decision thresholds; a label without a row uses 0.5. A record is positive for a label when its
-- probability is strictly above the threshold.
create table label_thresholds (
    position integer primary key references labels (position),
    threshold real not null check (threshold >= 0 and threshold <= 1),
    updated_at timestamptz not null default now()
);

-- Every label with its effective threshold.
create view dashboard_label_thresholds as
select l.position,
       l.code,
       l.name,
       l.label_group,
       coalesce(t.threshold, 0.5::real) as threshold,
       t.position is null as is_default
from labels l
left join label_thresholds t on t.position = l.position;

-- Records written per run and minute (by scored_at / quarantined_at), whoever wrote them. Exact: kept in step
-- with scores and quarantine by the triggers below.
create table run_progress_minutes (
    run_id uuid not null references runs (run_id) on delete cascade,
    minute timestamptz not null,
    records_scored bigint not null default 0,
    records_quarantined bigint not null default 0,
    primary key (run_id, minute)
);

-- Records written per worker, run and minute: a log of who wrote what, not decremented when rows are deleted.
-- The writer is the setting hubert.worker_id of the writing transaction, else its connection's
-- application_name, else '(unattributed)'.
create table worker_progress_minutes (
    run_id uuid not null references runs (run_id) on delete cascade,
    minute timestamptz not null,
    worker text not null,
    records_scored bigint not null default 0,
    records_quarantined bigint not null default 0,
    primary key (run_id, minute, worker)
);

create index worker_progress_minutes_minute on worker_progress_minutes (minute);

-- Scored records of a run whose probability for the label is above the label's current threshold. Labels
-- without a positive record have no row. Rebuilt for a label when its threshold changes.
create table run_label_positives (
    run_id uuid not null references runs (run_id) on delete cascade,
    position integer not null references labels (position),
    positives bigint not null check (positives >= 0),
    primary key (run_id, position)
);

-- Recent quarantine rows of a run (the last-minute rate).
create index quarantine_run_time on quarantine (run_id, quarantined_at);

-- The trigger functions below run as their owner (security definer, with the migration's search_path), so a
-- writer role needs privileges on scores and quarantine only, not on the summary tables.
create function dashboard_writer_name() returns text
language sql stable as $fn$
    select coalesce(
        nullif(current_setting('hubert.worker_id', true), ''),
        nullif(current_setting('application_name', true), ''),
        '(unattributed)')
$fn$;

-- scores: rows added (insert, or the new side of an update).
create function dashboard_scores_added() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    writer text := dashboard_writer_name();
    -- The thresholds as two small arrays: comparing probabilities[position + 1] against them is about three
    -- times faster than unnesting every probability array and joining the thresholds.
    positions integer[] := array(select position from dashboard_label_thresholds order by position);
    thresholds real[] := array(select threshold from dashboard_label_thresholds order by position);
begin
    insert into run_progress_minutes as m (run_id, minute, records_scored)
    select n.run_id, date_trunc('minute', n.scored_at), count(*)
    from added_rows n
    group by 1, 2
    order by 1, 2
    on conflict (run_id, minute) do update set records_scored = m.records_scored + excluded.records_scored;

    insert into worker_progress_minutes as w (run_id, minute, worker, records_scored)
    select n.run_id, date_trunc('minute', n.scored_at), writer, count(*)
    from added_rows n
    group by 1, 2
    order by 1, 2
    on conflict (run_id, minute, worker) do update set records_scored = w.records_scored + excluded.records_scored;

    insert into run_label_positives as p (run_id, position, positives)
    select n.run_id, t.position, count(*)
    from unnest(positions, thresholds) as t (position, threshold)
    cross join added_rows n
    where n.probabilities[t.position + 1] > t.threshold
    group by 1, 2
    order by 1, 2
    on conflict (run_id, position) do update set positives = p.positives + excluded.positives;

    return null;
end
$fn$;

-- scores: rows removed (delete, or the old side of an update). Updates only: a run being deleted has already
-- taken its summary rows with it.
create function dashboard_scores_removed() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    positions integer[] := array(select position from dashboard_label_thresholds order by position);
    thresholds real[] := array(select threshold from dashboard_label_thresholds order by position);
begin
    update run_progress_minutes m
    set records_scored = m.records_scored - d.n
    from (select o.run_id, date_trunc('minute', o.scored_at) as minute, count(*) as n
          from removed_rows o group by 1, 2 order by 1, 2) d
    where m.run_id = d.run_id and m.minute = d.minute;

    update run_label_positives p
    set positives = p.positives - d.n
    from (select o.run_id, t.position, count(*) as n
          from unnest(positions, thresholds) as t (position, threshold)
          cross join removed_rows o
          where o.probabilities[t.position + 1] > t.threshold
          group by 1, 2 order by 1, 2) d
    where p.run_id = d.run_id and p.position = d.position;

    return null;
end
$fn$;

create function dashboard_scores_truncated() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    delete from run_label_positives;
    update run_progress_minutes set records_scored = 0 where records_scored <> 0;
    return null;
end
$fn$;

create trigger scores_dashboard_insert after insert on scores
    referencing new table as added_rows for each statement execute function dashboard_scores_added();
create trigger scores_dashboard_update_old after update on scores
    referencing old table as removed_rows for each statement execute function dashboard_scores_removed();
create trigger scores_dashboard_update_new after update on scores
    referencing new table as added_rows for each statement execute function dashboard_scores_added();
create trigger scores_dashboard_delete after delete on scores
    referencing old table as removed_rows for each statement execute function dashboard_scores_removed();
create trigger scores_dashboard_truncate after truncate on scores
    for each statement execute function dashboard_scores_truncated();

-- quarantine: rows added.
create function dashboard_quarantine_added() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    writer text := dashboard_writer_name();
begin
    insert into run_progress_minutes as m (run_id, minute, records_quarantined)
    select n.run_id, date_trunc('minute', n.quarantined_at), count(*)
    from added_rows n
    group by 1, 2
    order by 1, 2
    on conflict (run_id, minute) do update set records_quarantined = m.records_quarantined + excluded.records_quarantined;

    insert into worker_progress_minutes as w (run_id, minute, worker, records_quarantined)
    select n.run_id, date_trunc('minute', n.quarantined_at), writer, count(*)
    from added_rows n
    group by 1, 2
    order by 1, 2
    on conflict (run_id, minute, worker) do update set records_quarantined = w.records_quarantined + excluded.records_quarantined;

    return null;
end
$fn$;

-- quarantine: rows removed.
create function dashboard_quarantine_removed() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    update run_progress_minutes m
    set records_quarantined = m.records_quarantined - d.n
    from (select o.run_id, date_trunc('minute', o.quarantined_at) as minute, count(*) as n
          from removed_rows o group by 1, 2 order by 1, 2) d
    where m.run_id = d.run_id and m.minute = d.minute;

    return null;
end
$fn$;

create function dashboard_quarantine_truncated() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    update run_progress_minutes set records_quarantined = 0 where records_quarantined <> 0;
    return null;
end
$fn$;

create trigger quarantine_dashboard_insert after insert on quarantine
    referencing new table as added_rows for each statement execute function dashboard_quarantine_added();
create trigger quarantine_dashboard_update_old after update on quarantine
    referencing old table as removed_rows for each statement execute function dashboard_quarantine_removed();
create trigger quarantine_dashboard_update_new after update on quarantine
    referencing new table as added_rows for each statement execute function dashboard_quarantine_added();
create trigger quarantine_dashboard_delete after delete on quarantine
    referencing old table as removed_rows for each statement execute function dashboard_quarantine_removed();
create trigger quarantine_dashboard_truncate after truncate on quarantine
    for each statement execute function dashboard_quarantine_truncated();

-- Recounts run_label_positives for the given labels from scores (one pass over scores). Holds a share lock on
-- scores meanwhile, so no batch is counted against the old threshold: writers wait for the recount to commit.
create function dashboard_recount_labels(p_positions integer[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    lock table scores in share mode;
    delete from run_label_positives where position = any (p_positions);
    insert into run_label_positives (run_id, position, positives)
    select s.run_id, t.position, count(*)
    from scores s
    cross join (select position, threshold from dashboard_label_thresholds where position = any (p_positions)) t
    where s.probabilities[t.position + 1] > t.threshold
    group by 1, 2;
end
$fn$;

-- Only the owner (and the triggers) may start a recount: it blocks writers while it runs.
revoke execute on function dashboard_recount_labels(integer[]) from public;

create function dashboard_thresholds_inserted() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    perform dashboard_recount_labels(array(select position from new_thresholds));
    return null;
end
$fn$;

create function dashboard_thresholds_updated() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    perform dashboard_recount_labels(array(
        select n.position from new_thresholds n
        left join old_thresholds o on o.position = n.position
        where o.threshold is distinct from n.threshold
        union
        select o.position from old_thresholds o
        where not exists (select 1 from new_thresholds n where n.position = o.position)));
    return null;
end
$fn$;

create function dashboard_thresholds_deleted() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    perform dashboard_recount_labels(array(select position from old_thresholds));
    return null;
end
$fn$;

create function dashboard_thresholds_truncated() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    perform dashboard_recount_labels(array(select position from labels));
    return null;
end
$fn$;

create trigger label_thresholds_insert after insert on label_thresholds
    referencing new table as new_thresholds for each statement execute function dashboard_thresholds_inserted();
create trigger label_thresholds_update after update on label_thresholds
    referencing old table as old_thresholds new table as new_thresholds
    for each statement execute function dashboard_thresholds_updated();
create trigger label_thresholds_delete after delete on label_thresholds
    referencing old table as old_thresholds for each statement execute function dashboard_thresholds_deleted();
create trigger label_thresholds_truncate after truncate on label_thresholds
    for each statement execute function dashboard_thresholds_truncated();

-- Summaries of rows written before this migration (none on a fresh database).
insert into run_progress_minutes (run_id, minute, records_scored, records_quarantined)
select run_id, minute, sum(scored), sum(quarantined)
from (select run_id, date_trunc('minute', scored_at) as minute, 1 as scored, 0 as quarantined from scores
      union all
      select run_id, date_trunc('minute', quarantined_at), 0, 1 from quarantine) x
group by 1, 2;

insert into worker_progress_minutes (run_id, minute, worker, records_scored, records_quarantined)
select run_id, minute, '(before dashboard)', records_scored, records_quarantined from run_progress_minutes;

do $do$
begin
    perform dashboard_recount_labels(array(select position from labels));
end
$do$;

-- Run progress, one row per run. Counts are the coordinator's (runs, updated as shards finish) or the rows
-- written so far, whichever is larger, so a bar moves while a shard is still being scored. Rates are records
-- (scored + quarantined) per second over the last minute and over the last hour (clipped to the time since
-- the run started); the ETA uses the last-minute rate and is null while planning or when nothing was written
-- in the last minute.
create view dashboard_run_progress as
select r.run_id,
       r.name,
       r.state,
       r.model_id,
       r.cancel_requested,
       r.planning_complete,
       r.created_at,
       r.started_at,
       r.finished_at,
       r.updated_at,
       r.shards_planned,
       r.shards_done,
       r.shards_failed,
       c.records_planned,
       c.records_done,
       c.records_quarantined,
       c.records_failed,
       c.records_remaining,
       case
           when r.state = 'completed' then 100::numeric
           when c.records_planned > 0
               then round(100 * least(1, (c.records_done + c.records_quarantined + c.records_failed)::numeric / c.records_planned), 2)
           else 0::numeric
       end as percent_done,
       k.rate_last_minute,
       k.rate_last_hour,
       e.eta_seconds,
       now() + make_interval(secs => e.eta_seconds) as eta_at,
       w.last_written_minute
from runs r
cross join lateral (
    select coalesce(sum(m.records_scored), 0)::bigint as scored,
           coalesce(sum(m.records_quarantined), 0)::bigint as quarantined,
           coalesce(sum(m.records_scored + m.records_quarantined)
                    filter (where m.minute >= date_trunc('minute', now()) - interval '59 minutes'), 0)::bigint as last_hour,
           coalesce(sum(m.records_scored + m.records_quarantined)
                    filter (where m.minute > date_trunc('minute', now() - interval '1 minute')), 0)::bigint as after_window_minute,
           coalesce(sum(m.records_scored + m.records_quarantined)
                    filter (where m.minute = date_trunc('minute', now() - interval '1 minute')), 0)::bigint as window_minute,
           min(m.minute) as first_minute,
           max(m.minute) as last_written_minute
    from run_progress_minutes m
    where m.run_id = r.run_id
) w
cross join lateral (
    select greatest(r.records_done, w.scored) as records_done,
           greatest(r.records_quarantined, w.quarantined) as records_quarantined,
           r.records_failed,
           greatest(r.records_planned, greatest(r.records_done, w.scored) + greatest(r.records_quarantined, w.quarantined) + r.records_failed)
               as records_planned
) c0
cross join lateral (
    select c0.records_planned, c0.records_done, c0.records_quarantined, c0.records_failed,
           case when r.state in ('completed', 'failed', 'cancelled') then 0::bigint
                else c0.records_planned - c0.records_done - c0.records_quarantined - c0.records_failed end as records_remaining
) c
cross join lateral (
    -- The last minute, (now - 60 s, ...), starts inside the minute bucket window_minute: its later buckets count
    -- whole; of window_minute, whichever side of the window start is shorter (at most 30 s of rows) is counted
    -- from the rows themselves, so the count stays exact and cheap however fast the run goes.
    select now() - interval '1 minute' as window_start,
           date_trunc('minute', now() - interval '1 minute') as window_minute
) b
cross join lateral (
    select w.after_window_minute
         + case
               when b.window_start - b.window_minute < interval '30 seconds' then
                   w.window_minute
                   - (select count(*) from scores s
                      where s.run_id = r.run_id and s.scored_at >= b.window_minute and s.scored_at <= b.window_start)
                   - (select count(*) from quarantine q
                      where q.run_id = r.run_id and q.quarantined_at >= b.window_minute and q.quarantined_at <= b.window_start)
               else
                   (select count(*) from scores s
                    where s.run_id = r.run_id and s.scored_at > b.window_start and s.scored_at < b.window_minute + interval '1 minute')
                   + (select count(*) from quarantine q
                      where q.run_id = r.run_id and q.quarantined_at > b.window_start and q.quarantined_at < b.window_minute + interval '1 minute')
           end as last_minute,
           coalesce(r.started_at, w.first_minute, now()) as since
) l
cross join lateral (
    select (l.last_minute / greatest(1, least(60, extract(epoch from now() - l.since))))::double precision as rate_last_minute,
           (w.last_hour / greatest(1, extract(epoch from now()
                - greatest(date_trunc('minute', now()) - interval '59 minutes', l.since))))::double precision
               as rate_last_hour
) k
cross join lateral (
    select case
               when r.state in ('completed', 'failed', 'cancelled') then 0::double precision
               when not r.planning_complete or k.rate_last_minute <= 0 then null
               else c.records_remaining / k.rate_last_minute
           end as eta_seconds
) e;

-- Records written per minute by each worker (for a throughput chart: group by minute, worker).
create view dashboard_worker_throughput as
select w.minute,
       w.worker,
       w.run_id,
       w.records_scored,
       w.records_quarantined,
       w.records_scored + w.records_quarantined as records,
       (w.records_scored + w.records_quarantined) / 60.0::double precision as records_per_second
from worker_progress_minutes w;

-- Each worker's shards per run as the coordinators recorded them: leases held now and shards finished.
create view dashboard_worker_shards as
select s.run_id,
       s.lease_owner as worker,
       count(*) filter (where s.state = 'leased') as shards_leased,
       count(*) filter (where s.state = 'done') as shards_done,
       coalesce(sum(s.records_done) filter (where s.state = 'done'), 0) as records_done,
       coalesce(sum(s.records_quarantined) filter (where s.state = 'done'), 0) as records_quarantined,
       min(s.lease_deadline) filter (where s.state = 'leased') as next_lease_deadline,
       max(s.updated_at) as last_update
from run_shards s
where s.lease_owner is not null
group by s.run_id, s.lease_owner;

-- Shard states per run; expired_leases counts leased shards past their deadline (the coordinator will hand
-- them out again).
create view dashboard_shard_states as
select r.run_id,
       r.name,
       r.state as run_state,
       coalesce(x.pending, 0) as pending,
       coalesce(x.leased, 0) as leased,
       coalesce(x.done, 0) as done,
       coalesce(x.failed, 0) as failed,
       coalesce(x.total, 0) as total,
       coalesce(x.expired_leases, 0) as expired_leases
from runs r
left join lateral (
    select count(*) filter (where s.state = 'pending') as pending,
           count(*) filter (where s.state = 'leased') as leased,
           count(*) filter (where s.state = 'done') as done,
           count(*) filter (where s.state = 'failed') as failed,
           count(*) as total,
           count(*) filter (where s.state = 'leased' and s.lease_deadline < now()) as expired_leases
    from run_shards s
    where s.run_id = r.run_id
) x on true;

-- Quarantine reasons per run with how many records each, first and last time, and one example record.
create view dashboard_quarantine_reasons as
select q.run_id,
       q.reason,
       count(*) as records,
       min(q.quarantined_at) as first_at,
       max(q.quarantined_at) as last_at,
       min(q.record_id) as example_record_id
from quarantine q
group by q.run_id, q.reason;

-- Label prevalence per run: the share of the run's scored records whose probability is above the label's
-- threshold. Only labels the run's model outputs.
create view dashboard_label_prevalence as
select r.run_id,
       r.name as run_name,
       r.model_id,
       t.position,
       t.code,
       t.name,
       t.label_group,
       t.threshold,
       t.is_default as threshold_is_default,
       n.records_scored,
       coalesce(p.positives, 0) as records_positive,
       case when n.records_scored > 0 then coalesce(p.positives, 0)::double precision / n.records_scored end as prevalence
from runs r
join models mo on mo.model_id = r.model_id
cross join lateral (
    select coalesce(sum(m.records_scored), 0)::bigint as records_scored from run_progress_minutes m where m.run_id = r.run_id
) n
join dashboard_label_thresholds t on t.position < cardinality(mo.label_codes)
left join run_label_positives p on p.run_id = r.run_id and p.position = t.position;

-- Per-record findings: one row per label above its threshold, rank 1 = highest probability (ties: label order).
create view dashboard_record_findings as
select s.model_id,
       s.record_id,
       s.run_id,
       f.rank,
       f.position,
       f.code,
       f.name,
       f.probability,
       f.threshold
from scores s
cross join lateral (
    select (row_number() over (order by u.probability desc, u.ord))::integer as rank,
           t.position, t.code, t.name, u.probability, t.threshold
    from unnest(s.probabilities) with ordinality as u (probability, ord)
    join dashboard_label_thresholds t on t.position = u.ord - 1
    where u.probability > t.threshold
) f;

-- Per-record top findings in one row: label codes and names above threshold, highest probability first
-- (empty arrays when none).
create view dashboard_record_top_findings as
select s.model_id,
       s.record_id,
       s.run_id,
       s.scored_at,
       coalesce(f.findings, 0) as findings,
       coalesce(f.codes, '{}') as codes,
       coalesce(f.names, '{}') as names,
       coalesce(f.probabilities, '{}') as probabilities
from scores s
cross join lateral (
    select count(*)::integer as findings,
           array_agg(t.code order by u.probability desc, u.ord) as codes,
           array_agg(t.name order by u.probability desc, u.ord) as names,
           array_agg(u.probability order by u.probability desc, u.ord) as probabilities
    from unnest(s.probabilities) with ordinality as u (probability, ord)
    join dashboard_label_thresholds t on t.position = u.ord - 1
    where u.probability > t.threshold
) f;

-- Read-only role for dashboards and BI tools. Roles are cluster-wide: created once (NOLOGIN; an operator grants
-- LOGIN and a password), granted read access in every database the migrations run in.
do $do$
begin
    if not exists (select 1 from pg_roles where rolname = 'hubert_dashboard') then
        begin
            create role hubert_dashboard nologin;
        exception when duplicate_object or unique_violation then
            null; -- created concurrently by a migration of another database
        end;
    end if;
    execute format('grant connect on database %I to hubert_dashboard', current_database());
end
$do$;

grant usage on schema public to hubert_dashboard;
grant select on
    dashboard_label_thresholds, dashboard_run_progress, dashboard_worker_throughput, dashboard_worker_shards,
    dashboard_shard_states, dashboard_quarantine_reasons, dashboard_label_prevalence, dashboard_record_findings,
    dashboard_record_top_findings,
    labels, label_thresholds, models, runs, run_shards, scores, quarantine,
    run_progress_minutes, worker_progress_minutes, run_label_positives
    to hubert_dashboard;
-- Tables and views later migrations create (as the role running them) are readable too.
alter default privileges in schema public grant select on tables to hubert_dashboard;
