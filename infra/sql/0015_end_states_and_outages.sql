-- Truthful end states and waiting out outages (issue 12).
-- runs.state gains 'completed_with_failures': every shard is done or failed and at least one failed, so some planned
-- records were neither scored nor quarantined ('completed' now means every planned record was). A run whose every
-- shard failed is 'failed'.
-- runs.waiting_for: while workers cannot reach a service the run needs ('storage', 'database'), what it waits for and
-- since when; null otherwise. Attempts are not spent meanwhile, for up to runs.outage_budget_seconds (default 30
-- minutes) of one continuous outage.
alter table runs drop constraint runs_state_check;
alter table runs add constraint runs_state_check
    check (state in ('pending', 'planning', 'running', 'completed', 'completed_with_failures', 'failed', 'cancelled'));
-- Cancelling a run ends its open shards: pending and leased ones become 'cancelled' (none stays leased or pending).
alter table run_shards drop constraint run_shards_state_check;
alter table run_shards add constraint run_shards_state_check check (state in ('pending', 'leased', 'done', 'failed', 'cancelled'));
alter table runs add column waiting_for text;
alter table runs add column waiting_since timestamptz;
alter table runs add column outage_budget_seconds integer not null default 1800
    check (outage_budget_seconds >= 0 and outage_budget_seconds <= 604800);

-- dashboard_run_progress: a run completed with failures is final (nothing remaining, no ETA); waiting_for and
-- waiting_since are added last, as create or replace requires.
create or replace view dashboard_run_progress as
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
               then round(100 * least(1, (c.records_done + c.records_quarantined + c.records_failed + c.records_skipped)::numeric
                                          / c.records_planned), 2)
           else 0::numeric
       end as percent_done,
       k.rate_last_minute,
       k.rate_last_hour,
       e.eta_seconds,
       now() + make_interval(secs => e.eta_seconds) as eta_at,
       w.last_written_minute,
       c.records_skipped,
       r.waiting_for,
       r.waiting_since
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
           r.records_skipped,
           greatest(r.records_planned, greatest(r.records_done, w.scored) + greatest(r.records_quarantined, w.quarantined)
                    + r.records_failed + r.records_skipped) as records_planned
) c0
cross join lateral (
    select c0.records_planned, c0.records_done, c0.records_quarantined, c0.records_failed, c0.records_skipped,
           case when r.state in ('completed', 'completed_with_failures', 'failed', 'cancelled') then 0::bigint
                else c0.records_planned - c0.records_done - c0.records_quarantined - c0.records_failed - c0.records_skipped
           end as records_remaining
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
               when r.state in ('completed', 'completed_with_failures', 'failed', 'cancelled') then 0::double precision
               when not r.planning_complete or k.rate_last_minute <= 0 then null
               else c.records_remaining / k.rate_last_minute
           end as eta_seconds
) e;
