-- Scheduled cohort scoring and incremental runs.
-- Plain SQL in one transaction (applied by SchemaMigrator and infra/local/migrate.sh).
--
-- A schedule names an input, a model and run options, and a cron expression evaluated in an IANA time zone. A
-- schedule grain on the silos (woken by an Orleans reminder stored in orleansreminderstable, 0003) starts the
-- schedule's runs. Exactly one run per due time is enforced here, not by the grains: a run is started in one
-- transaction that locks the schedule row, checks that the due time is later than last_due_at, inserts the run
-- (unique per schedule and due time) and moves last_due_at forward.

create table schedules (
    schedule_id uuid primary key,
    name text not null unique check (name <> ''),
    input_container text not null check (input_container <> ''),
    input_prefix text not null default '',
    input_manifest text check (input_manifest is null or input_manifest <> ''),
    model_id text not null references models (model_id),
    model_path text not null,
    preprocessing_profile text not null,
    aggregation text not null check (aggregation in ('mean', 'max')),
    max_windows integer not null check (max_windows > 0),
    batch_size integer not null check (batch_size > 0),
    shard_size integer not null check (shard_size > 0),
    max_attempts integer not null check (max_attempts > 0),
    lease_seconds integer not null check (lease_seconds > 0),
    -- Five fields (minute hour day-of-month month day-of-week), or six with a leading seconds field.
    cron text not null,
    -- IANA time zone id the cron expression is read in (Europe/Amsterdam); daylight saving handled by Cronos.
    time_zone text not null default 'UTC',
    -- Incremental runs score only records without a score for the model, or whose source blob's ETag changed.
    incremental boolean not null default true,
    enabled boolean not null default true,
    created_at timestamptz not null default now(),
    -- The latest cron due time a run was started for (runs started by `schedule run-now` leave it alone); due
    -- times are counted from created_at until the first run.
    last_due_at timestamptz,
    last_run_id uuid,
    -- When a silo last evaluated the schedule, and the next due time it computed (for dashboards and operators).
    last_checked_at timestamptz,
    next_due_at timestamptz
);

alter table runs
    add column incremental boolean not null default false,
    -- Records the run did not score because their stored score is current: left out at planning
    -- (planning_skipped) or by the worker after download (the shards' records_skipped).
    add column records_skipped bigint not null default 0,
    add column planning_skipped bigint not null default 0,
    -- ETags of planning_carry's blobs, in the same order (incremental runs compare them with stored scores).
    add column planning_carry_etags text[] not null default '{}',
    add column schedule_id uuid references schedules (schedule_id) on delete set null,
    -- The cron due time this run was started for; null for a run started by hand.
    add column scheduled_for timestamptz;

-- At most one run per schedule and due time (runs started by hand have no due time, and nulls are distinct).
create unique index runs_schedule_due on runs (schedule_id, scheduled_for);

alter table run_shards add column records_skipped integer not null default 0 check (records_skipped >= 0);

-- Incremental planning asks, for a page of listed blobs, which already have scores for the model and with which
-- ETags; one index probe per blob.
create index scores_model_source on scores (model_id, source_blob) include (source_etag);

-- Scheduled runs, newest due time first per schedule: the history of a nightly cohort.
create view dashboard_schedule_runs as
select s.schedule_id,
       s.name as schedule_name,
       r.scheduled_for,
       r.run_id,
       r.name as run_name,
       r.state,
       r.incremental,
       r.records_planned,
       r.records_done,
       r.records_quarantined,
       r.records_failed,
       r.records_skipped,
       r.created_at,
       r.started_at,
       r.finished_at,
       r.error
from runs r
join schedules s on s.schedule_id = r.schedule_id;

-- Every schedule with its next due time (as a silo last computed it) and its latest run.
create view dashboard_schedules as
select s.schedule_id,
       s.name,
       s.enabled,
       s.incremental,
       s.cron,
       s.time_zone,
       case when s.input_manifest is null then s.input_container || '/' || s.input_prefix
            else 'manifest ' || s.input_container || '/' || s.input_manifest end as input,
       s.model_id,
       s.created_at,
       s.last_due_at,
       s.next_due_at,
       s.last_checked_at,
       l.run_id as last_run_id,
       l.state as last_run_state,
       l.records_done as last_run_records_done,
       l.records_skipped as last_run_records_skipped,
       l.finished_at as last_run_finished_at
from schedules s
left join lateral (
    select r.run_id, r.state, r.records_done, r.records_skipped, r.finished_at
    from runs r
    where r.schedule_id = s.schedule_id
    order by r.created_at desc
    limit 1
) l on true;

grant select on schedules, dashboard_schedule_runs, dashboard_schedules to hubert_dashboard;
