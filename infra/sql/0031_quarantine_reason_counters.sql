-- Quarantine reasons in constant time (issue 14): the dashboard's quarantine view (dashboard_quarantine_reasons)
-- grouped the run's quarantine rows on every read (47 to 182 ms at 50,280 rows of one run, growing with the
-- quarantine). It now reads one counter row per run and reason, kept in step with quarantine by a statement trigger
-- in the writer's transaction: how many records, the first and last quarantine time, and an example record (the
-- least record id, as the view gave).
--
-- Inserts (the workers' and the coordinator's; a record quarantined again in a run is "on conflict do nothing", so
-- no change) add to the row with an upsert, groups in key order, as the progress minutes of 0010 do. Rows removed or
-- changed (a delete, a reason corrected by an operator) subtract their count; where a removed row may have held the
-- first or last time or the example, those three are looked up again among the group's rows left, through the
-- indexes on (run, time) and (run, record). A run deleted takes its counters with it (foreign key, cascade): the
-- trigger then finds no counter row of it to change.

create table run_quarantine_reasons (
    run_id uuid not null references runs (run_id) on delete cascade,
    reason text not null,
    records bigint not null check (records >= 0),
    first_at timestamptz not null,
    last_at timestamptz not null,
    example_record_id text not null,
    primary key (run_id, reason)
);

create function quarantine_reasons_changed() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    if tg_op in ('INSERT', 'UPDATE') then
        insert into run_quarantine_reasons as c (run_id, reason, records, first_at, last_at, example_record_id)
        select n.run_id, n.reason, count(*), min(n.quarantined_at), max(n.quarantined_at), min(n.record_id)
        from new_rows n
        where exists (select 1 from runs r where r.run_id = n.run_id)
        group by 1, 2
        order by 1, 2
        on conflict (run_id, reason) do update set
            records = c.records + excluded.records,
            first_at = least(c.first_at, excluded.first_at),
            last_at = greatest(c.last_at, excluded.last_at),
            example_record_id = least(c.example_record_id, excluded.example_record_id);
    end if;

    if tg_op in ('UPDATE', 'DELETE') then
        -- The groups the removed rows belonged to, locked in key order before anything is read again: a writer that
        -- upserted one of them commits first, and the statements below (each with a new snapshot) see its rows.
        perform 1
        from run_quarantine_reasons c
        where (c.run_id, c.reason) in (select o.run_id, o.reason from old_rows o)
        order by c.run_id, c.reason
        for update of c;

        with gone as (
            select o.run_id, o.reason, count(*) as n from old_rows o group by 1, 2
        )
        update run_quarantine_reasons c set records = c.records - g.n
        from gone g
        where c.run_id = g.run_id and c.reason = g.reason;

        delete from run_quarantine_reasons c
        where c.records = 0 and (c.run_id, c.reason) in (select o.run_id, o.reason from old_rows o);

        -- Only where a removed row was (or tied) the first, the last or the example.
        with gone as (
            select o.run_id, o.reason, min(o.quarantined_at) as first_at, max(o.quarantined_at) as last_at, min(o.record_id) as example_record_id
            from old_rows o group by 1, 2
        )
        update run_quarantine_reasons c set
            first_at = (select min(q.quarantined_at) from quarantine q where q.run_id = c.run_id and q.reason = c.reason),
            last_at = (select max(q.quarantined_at) from quarantine q where q.run_id = c.run_id and q.reason = c.reason),
            example_record_id = (select min(q.record_id) from quarantine q where q.run_id = c.run_id and q.reason = c.reason)
        from gone g
        where c.run_id = g.run_id and c.reason = g.reason
          and (g.first_at <= c.first_at or g.last_at >= c.last_at or g.example_record_id <= c.example_record_id);
    end if;

    return null;
end
$fn$;

create function quarantine_reasons_truncated() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    delete from run_quarantine_reasons;
    return null;
end
$fn$;

create trigger quarantine_reasons_insert after insert on quarantine
    referencing new table as new_rows for each statement execute function quarantine_reasons_changed();
create trigger quarantine_reasons_update after update on quarantine
    referencing old table as old_rows new table as new_rows for each statement execute function quarantine_reasons_changed();
create trigger quarantine_reasons_delete after delete on quarantine
    referencing old table as old_rows for each statement execute function quarantine_reasons_changed();
create trigger quarantine_reasons_truncate after truncate on quarantine
    for each statement execute function quarantine_reasons_truncated();

-- The counters of the rows already there; no writer adds to quarantine meanwhile.
lock table quarantine in share mode;
insert into run_quarantine_reasons (run_id, reason, records, first_at, last_at, example_record_id)
select q.run_id, q.reason, count(*), min(q.quarantined_at), max(q.quarantined_at), min(q.record_id)
from quarantine q
group by 1, 2;

-- Same columns and rows as before, read from the counters.
create or replace view dashboard_quarantine_reasons as
select c.run_id,
       c.reason,
       c.records,
       c.first_at,
       c.last_at,
       c.example_record_id
from run_quarantine_reasons c;
