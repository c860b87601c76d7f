-- Shard counters (issue 14): the shard views read a few counter rows per run instead of scanning run_shards, which
-- took 113 ms (worker shards) and 76 ms (shard states) at 150,000 shards of one run and over a second at 1.5M.
-- Statement triggers on run_shards keep the counters in step with the rows, in the writer's transaction.

-- The counters are rows of deltas, only ever inserted by the triggers (no upsert of one row per run): a writer of
-- run_shards never waits on another's counter row, so a planning step that waits on Postgres holds no lease back.
-- The triggers now and then fold a run's deltas into one row per group, skipping rows other transactions hold.

-- Shards of a run per state: the sum of shards over the run's rows per state.
create table run_shard_counts (
    run_id uuid not null,
    state text not null,
    shards bigint not null
);

create index run_shard_counts_run on run_shard_counts (run_id);

-- Shards of a run per worker that holds or held their lease (run_shards.lease_owner): sums over the rows per worker
-- of all of them, leased, done, and the records of the done ones; last_update is the latest update seen.
create table run_worker_shard_counts (
    run_id uuid not null,
    worker text not null,
    shards bigint not null,
    shards_leased bigint not null,
    shards_done bigint not null,
    records_done bigint not null,
    records_quarantined bigint not null,
    last_update timestamptz
);

create index run_worker_shard_counts_run on run_worker_shard_counts (run_id, worker);

-- The leased shards of a run are few (one or two per worker): their deadlines come from this index.
create index run_shards_leased on run_shards (run_id, lease_deadline) where state = 'leased';

-- One trigger function for every change: the old rows (update, delete) go in as negative deltas and the new rows
-- (insert, update) as positive ones. Rows of a run being deleted are not added back (its counters go with it).
create function run_shards_counters_changed() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    touched uuid[];
begin
    if tg_op in ('UPDATE', 'DELETE') then
        insert into run_shard_counts (run_id, state, shards)
        select o.run_id, o.state, -count(*) from old_rows o
        where exists (select 1 from runs r where r.run_id = o.run_id)
        group by 1, 2;

        insert into run_worker_shard_counts (run_id, worker, shards, shards_leased, shards_done, records_done, records_quarantined, last_update)
        select o.run_id, o.lease_owner, -count(*),
               -count(*) filter (where o.state = 'leased'),
               -count(*) filter (where o.state = 'done'),
               -coalesce(sum(o.records_done) filter (where o.state = 'done'), 0),
               -coalesce(sum(o.records_quarantined) filter (where o.state = 'done'), 0),
               null
        from old_rows o
        where o.lease_owner is not null and exists (select 1 from runs r where r.run_id = o.run_id)
        group by 1, 2;
    end if;

    if tg_op in ('INSERT', 'UPDATE') then
        insert into run_shard_counts (run_id, state, shards)
        select n.run_id, n.state, count(*) from new_rows n
        where exists (select 1 from runs r where r.run_id = n.run_id)
        group by 1, 2;

        insert into run_worker_shard_counts (run_id, worker, shards, shards_leased, shards_done, records_done, records_quarantined, last_update)
        select n.run_id, n.lease_owner, count(*),
               count(*) filter (where n.state = 'leased'),
               count(*) filter (where n.state = 'done'),
               coalesce(sum(n.records_done) filter (where n.state = 'done'), 0),
               coalesce(sum(n.records_quarantined) filter (where n.state = 'done'), 0),
               max(n.updated_at)
        from new_rows n
        where n.lease_owner is not null and exists (select 1 from runs r where r.run_id = n.run_id)
        group by 1, 2;
    end if;

    -- About one statement in 16 folds the deltas of the runs it touched, taking only rows no one else holds.
    if random() < 0.0625 then
        if tg_op = 'INSERT' then
            touched := array(select distinct n.run_id from new_rows n);
        else
            touched := array(select distinct o.run_id from old_rows o);
        end if;
        perform run_shard_counters_fold(touched);
    end if;

    return null;
end
$fn$;

-- Folds the counter rows of the given runs into one row per group (rows locked by other transactions are left).
create function run_shard_counters_fold(p_runs uuid[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    with picked as (
        select ctid from run_shard_counts where run_id = any (p_runs) for update skip locked
    ), gone as (
        delete from run_shard_counts c using picked p where c.ctid = p.ctid returning c.run_id, c.state, c.shards
    )
    insert into run_shard_counts (run_id, state, shards)
    select g.run_id, g.state, sum(g.shards) from gone g group by 1, 2 having sum(g.shards) <> 0;

    with picked as (
        select ctid from run_worker_shard_counts where run_id = any (p_runs) for update skip locked
    ), gone as (
        delete from run_worker_shard_counts c using picked p where c.ctid = p.ctid
        returning c.run_id, c.worker, c.shards, c.shards_leased, c.shards_done, c.records_done, c.records_quarantined, c.last_update
    )
    insert into run_worker_shard_counts (run_id, worker, shards, shards_leased, shards_done, records_done, records_quarantined, last_update)
    select g.run_id, g.worker, sum(g.shards), sum(g.shards_leased), sum(g.shards_done), sum(g.records_done),
           sum(g.records_quarantined), max(g.last_update)
    from gone g group by 1, 2;
end
$fn$;

create function run_shards_counters_truncated() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    delete from run_shard_counts;
    delete from run_worker_shard_counts;
    return null;
end
$fn$;

-- A deleted run's counters go with it.
create function runs_counters_deleted() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    delete from run_shard_counts c using old_runs o where c.run_id = o.run_id;
    delete from run_worker_shard_counts c using old_runs o where c.run_id = o.run_id;
    return null;
end
$fn$;

create trigger run_shards_counters_insert after insert on run_shards
    referencing new table as new_rows for each statement execute function run_shards_counters_changed();
create trigger run_shards_counters_update after update on run_shards
    referencing old table as old_rows new table as new_rows for each statement execute function run_shards_counters_changed();
create trigger run_shards_counters_delete after delete on run_shards
    referencing old table as old_rows for each statement execute function run_shards_counters_changed();
create trigger run_shards_counters_truncate after truncate on run_shards
    for each statement execute function run_shards_counters_truncated();
create trigger runs_counters_delete after delete on runs
    referencing old table as old_runs for each statement execute function runs_counters_deleted();

-- Counters of the shards written before this migration.
insert into run_shard_counts (run_id, state, shards)
select run_id, state, count(*) from run_shards group by 1, 2;

insert into run_worker_shard_counts (run_id, worker, shards, shards_leased, shards_done, records_done, records_quarantined, last_update)
select run_id, lease_owner, count(*),
       count(*) filter (where state = 'leased'),
       count(*) filter (where state = 'done'),
       coalesce(sum(records_done) filter (where state = 'done'), 0),
       coalesce(sum(records_quarantined) filter (where state = 'done'), 0),
       max(updated_at)
from run_shards where lease_owner is not null group by 1, 2;

-- The shard views, now from the counters (same columns; dashboard_shard_states gains cancelled, last).
create or replace view dashboard_worker_shards as
select w.run_id,
       w.worker,
       w.shards_leased,
       w.shards_done,
       w.records_done,
       w.records_quarantined,
       (select min(s.lease_deadline) from run_shards s
        where s.run_id = w.run_id and s.state = 'leased' and s.lease_owner = w.worker) as next_lease_deadline,
       w.last_update
from (select c.run_id, c.worker, sum(c.shards) as shards, sum(c.shards_leased)::bigint as shards_leased,
             sum(c.shards_done)::bigint as shards_done, sum(c.records_done)::bigint as records_done,
             sum(c.records_quarantined)::bigint as records_quarantined, max(c.last_update) as last_update
      from run_worker_shard_counts c
      group by c.run_id, c.worker) w
where w.shards > 0;

create or replace view dashboard_shard_states as
select r.run_id,
       r.name,
       r.state as run_state,
       coalesce(x.pending, 0) as pending,
       coalesce(x.leased, 0) as leased,
       coalesce(x.done, 0) as done,
       coalesce(x.failed, 0) as failed,
       coalesce(x.total, 0) as total,
       coalesce(e.expired_leases, 0) as expired_leases,
       coalesce(x.cancelled, 0) as cancelled
from runs r
left join lateral (
    select sum(c.shards) filter (where c.state = 'pending')::bigint as pending,
           sum(c.shards) filter (where c.state = 'leased')::bigint as leased,
           sum(c.shards) filter (where c.state = 'done')::bigint as done,
           sum(c.shards) filter (where c.state = 'failed')::bigint as failed,
           sum(c.shards)::bigint as total,
           sum(c.shards) filter (where c.state = 'cancelled')::bigint as cancelled
    from run_shard_counts c
    where c.run_id = r.run_id
) x on true
left join lateral (
    select count(*) as expired_leases from run_shards s
    where s.run_id = r.run_id and s.state = 'leased' and s.lease_deadline < now()
) e on true;

grant select on run_shard_counts, run_worker_shard_counts to hubert_dashboard;
