-- Shard counters (issue 14): the shard views read a few counter rows per run instead of scanning run_shards, which
-- took 113 ms (worker shards) and 76 ms (shard states) at 150,000 shards of one run and over a second at 1.5M.
-- Statement triggers on run_shards keep the counters in step with the rows, in the writer's transaction.

-- Shards of a run per state.
create table run_shard_counts (
    run_id uuid not null references runs (run_id) on delete cascade,
    state text not null,
    shards bigint not null,
    primary key (run_id, state)
);

-- Shards of a run per worker that holds or held their lease (run_shards.lease_owner): all of them, leased, done,
-- and the records of the done ones; last_update is the latest update of any of them.
create table run_worker_shard_counts (
    run_id uuid not null references runs (run_id) on delete cascade,
    worker text not null,
    shards bigint not null,
    shards_leased bigint not null,
    shards_done bigint not null,
    records_done bigint not null,
    records_quarantined bigint not null,
    last_update timestamptz,
    primary key (run_id, worker)
);

-- The leased shards of a run are few (one or two per worker): their deadlines come from this index.
create index run_shards_leased on run_shards (run_id, lease_deadline) where state = 'leased';

-- One trigger function for every change: the old rows (update, delete) are taken out of the counters and the new
-- rows (insert, update) added. Rows of a run being deleted are not added back (its counters go with it).
create function run_shards_counters_changed() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        update run_shard_counts c set shards = c.shards - d.n
        from (select o.run_id, o.state, count(*) as n from old_rows o group by 1, 2 order by 1, 2) d
        where c.run_id = d.run_id and c.state = d.state;

        update run_worker_shard_counts w set
            shards = w.shards - d.shards,
            shards_leased = w.shards_leased - d.leased,
            shards_done = w.shards_done - d.done,
            records_done = w.records_done - d.records_done,
            records_quarantined = w.records_quarantined - d.records_quarantined
        from (select o.run_id, o.lease_owner as worker, count(*) as shards,
                     count(*) filter (where o.state = 'leased') as leased,
                     count(*) filter (where o.state = 'done') as done,
                     coalesce(sum(o.records_done) filter (where o.state = 'done'), 0) as records_done,
                     coalesce(sum(o.records_quarantined) filter (where o.state = 'done'), 0) as records_quarantined
              from old_rows o where o.lease_owner is not null group by 1, 2 order by 1, 2) d
        where w.run_id = d.run_id and w.worker = d.worker;
    end if;

    if tg_op in ('INSERT', 'UPDATE') then
        insert into run_shard_counts as c (run_id, state, shards)
        select n.run_id, n.state, count(*) from new_rows n
        where exists (select 1 from runs r where r.run_id = n.run_id)
        group by 1, 2 order by 1, 2
        on conflict (run_id, state) do update set shards = c.shards + excluded.shards;

        insert into run_worker_shard_counts as w (run_id, worker, shards, shards_leased, shards_done, records_done, records_quarantined, last_update)
        select n.run_id, n.lease_owner, count(*),
               count(*) filter (where n.state = 'leased'),
               count(*) filter (where n.state = 'done'),
               coalesce(sum(n.records_done) filter (where n.state = 'done'), 0),
               coalesce(sum(n.records_quarantined) filter (where n.state = 'done'), 0),
               max(n.updated_at)
        from new_rows n
        where n.lease_owner is not null and exists (select 1 from runs r where r.run_id = n.run_id)
        group by 1, 2 order by 1, 2
        on conflict (run_id, worker) do update set
            shards = w.shards + excluded.shards,
            shards_leased = w.shards_leased + excluded.shards_leased,
            shards_done = w.shards_done + excluded.shards_done,
            records_done = w.records_done + excluded.records_done,
            records_quarantined = w.records_quarantined + excluded.records_quarantined,
            last_update = greatest(w.last_update, excluded.last_update);
    end if;

    return null;
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

create trigger run_shards_counters_insert after insert on run_shards
    referencing new table as new_rows for each statement execute function run_shards_counters_changed();
create trigger run_shards_counters_update after update on run_shards
    referencing old table as old_rows new table as new_rows for each statement execute function run_shards_counters_changed();
create trigger run_shards_counters_delete after delete on run_shards
    referencing old table as old_rows for each statement execute function run_shards_counters_changed();
create trigger run_shards_counters_truncate after truncate on run_shards
    for each statement execute function run_shards_counters_truncated();

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
from run_worker_shard_counts w
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
