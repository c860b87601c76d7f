-- The flagged-records page at scale (issue 14): a run's flagged records for one label, highest probability first,
-- read every row of the run (19.4 s warm, about 80 s cold at 10,000,000 rows). Now each run keeps, per label, the
-- entries of its highest rows in an index in page order, complete above a per-label cut, and the dashboard serves a
-- page from them when the page ends at or above the cut; otherwise (a deep page, a threshold below the cut, a run
-- whose list is not complete) it reads the rows as before (src/Silo/Host/Dashboard/DashboardReviewQueries.cs).
--
-- The rule every part keeps: while a run's list is 'complete', every row the run counts (the rows it wrote, and those
-- it reused through run_reused_scores) whose probability for a label is at or above that label's cut has an entry
-- (run, label, that probability, record). Entries may be stale (a row replaced, deleted, or no longer the run's): the
-- reader checks each one it shows against scores, a primary-key look-up. A cut only ever rises (entries below a
-- risen cut are simply more than needed), so raising one needs no lock.
--
-- Who keeps it:
-- * The result writer (src/Silo/Storage/RunLabelTop.cs), in each batch's own transaction: on the direct COPY path it
--   sends the batch's entries at or above the cuts it read as one row of run_label_top_batches (arrays; one row per run
--   and batch, not one per entry), on the staging path (stored keys: retries, replacements, reuse) one insert of the
--   entries of every run that counts the stored rows. It says so in the transaction (hubert.top_entries = 'on').
-- * The writer raises a run's cuts from the bucket counts of the rows it wrote itself (the bucket where its top
--   1,000 rows of the label end): at least that many of the run's rows are then above the cut.
-- * The writer's fold (every few batches, a transaction of its own) moves the batch rows into run_label_top and drops
--   entries below the cuts (run_label_top_compact).
-- * Any other write of scores or run_reused_scores (plain SQL, an older writer) marks the runs it touches 'invalid'
--   (a statement trigger, not even called when the writer says it keeps the entries), and their pages are
--   read from the rows until an operator rebuilds the list (run_label_top_rebuild).
-- * A new run starts 'pending': writers send no entries, and its pages read its rows (cheap while it is small). The
--   writer's fold makes the list once the run has enough rows (run_label_top_establish; 200,000 from the writer, as
--   its progress minutes count them): cuts from the run's bucket counts and entries from one pass over its rows, all
--   writers held back meanwhile (a share lock on scores: about 2.4 s at 50,000 rows on the loaded 2-core VM, so some
--   10 s at 200,000), once per run. Sending entries from a run's first row instead cost more than the rows
--   themselves in `bench write` (each of a run's first n rows is among its top 1,000 of a label with odds 1,000 / n,
--   164 labels: about 9 entries per row over 100,000 rows; docs/benchmarks.md).
-- * A run of before this migration starts 'pending' when it has no rows yet, else 'invalid'.
-- Threshold changes do not touch the list: a threshold only cuts the ordered list.

create table run_label_top_cuts (
    run_id uuid primary key references runs (run_id) on delete cascade,
    -- 'pending': a new run, no list yet (its pages read the rows, cheap while it is small); 'complete': the rule above
    -- holds; 'invalid': rows came through a path that does not keep the entries.
    state text not null check (state in ('pending', 'complete', 'invalid')),
    -- Per label (index position + 1) the cut; null (or an element past the end) is minus infinity: every row enters.
    cuts real[],
    updated_at timestamptz not null default now()
);

-- Entries in page order (a backward scan of the key gives probability desc, record_id desc).
create table run_label_top (
    run_id uuid not null references runs (run_id) on delete cascade,
    position smallint not null,
    probability real not null,
    record_id text not null,
    primary key (run_id, position, probability, record_id)
);

-- The writer's entries of one batch, awaiting the next fold: entry i is label positions[i] of record
-- record_ids[rows[i] + 1] at probabilities[i].
create table run_label_top_batches (
    run_id uuid not null references runs (run_id) on delete cascade,
    record_ids text[] not null,
    positions smallint[] not null,
    rows integer[] not null,
    probabilities real[] not null,
    check (cardinality(positions) = cardinality(rows) and cardinality(rows) = cardinality(probabilities))
);

alter table run_label_top_batches alter column record_ids set storage external;
alter table run_label_top_batches alter column positions set storage external;
alter table run_label_top_batches alter column rows set storage external;
alter table run_label_top_batches alter column probabilities set storage external;
create index run_label_top_batches_run on run_label_top_batches (run_id);

-- Runs of before this migration: complete only when nothing is stored for them yet.
insert into run_label_top_cuts (run_id, state)
select r.run_id,
       case when exists (select 1 from scores s where s.run_id = r.run_id)
              or exists (select 1 from run_reused_scores u where u.run_id = r.run_id) then 'invalid' else 'pending' end
from runs r;

create function run_label_top_new_run() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    insert into run_label_top_cuts (run_id, state) values (new.run_id, 'pending') on conflict (run_id) do nothing;
    return null;
end
$fn$;

create trigger run_label_top_new_run after insert on runs
    for each row execute function run_label_top_new_run();

-- Writes of scores and run_reused_scores that do not keep the entries mark the runs that count the written rows
-- invalid: the rows' own runs and, for scores, every run that reuses them.
create function run_label_top_guard() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    if coalesce(current_setting('hubert.top_entries', true), '') = 'on' then
        return null;
    end if;
    if tg_table_name = 'scores' then
        insert into run_label_top_cuts as k (run_id, state)
        select x.run_id, 'invalid'
        from (select n.run_id from added_rows n
              union
              select u.run_id from added_rows n
              join run_reused_scores u on u.model_id = n.model_id and u.record_id = n.record_id) x
        where exists (select 1 from runs r where r.run_id = x.run_id)
        order by 1
        on conflict (run_id) do update set state = 'invalid', updated_at = now() where k.state <> 'invalid';
    else
        insert into run_label_top_cuts as k (run_id, state)
        select distinct n.run_id, 'invalid' from added_rows n order by 1
        on conflict (run_id) do update set state = 'invalid', updated_at = now() where k.state <> 'invalid';
    end if;
    return null;
end
$fn$;

create trigger run_label_top_guard_insert after insert on scores
    referencing new table as added_rows for each statement
    when (current_setting('hubert.top_entries', true) is distinct from 'on')
    execute function run_label_top_guard();
create trigger run_label_top_guard_update after update on scores
    referencing new table as added_rows for each statement
    when (current_setting('hubert.top_entries', true) is distinct from 'on')
    execute function run_label_top_guard();
create trigger run_label_top_guard_reused after insert on run_reused_scores
    referencing new table as added_rows for each statement
    when (current_setting('hubert.top_entries', true) is distinct from 'on')
    execute function run_label_top_guard();

-- Raises a run's cuts to at least p_cuts, label by label (never lowers one).
create function run_label_top_raise(p_run uuid, p_cuts real[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    update run_label_top_cuts k
    set cuts = array(select greatest(coalesce(x.o, '-Infinity'::real), coalesce(x.n, '-Infinity'::real))
                     from unnest(k.cuts, p_cuts) with ordinality as x (o, n, i)
                     order by x.i),
        updated_at = now()
    where k.run_id = p_run
      and exists (select 1 from unnest(k.cuts, p_cuts) as x (o, n)
                  where coalesce(x.n, '-Infinity'::real) > coalesce(x.o, '-Infinity'::real));
end
$fn$;

-- The writer's staging path: after its upsert and its reuse rows, the entries of every run that counts one of the
-- staged keys' stored rows (its own run, and each run that reuses it), from the stored probabilities.
create function run_label_top_add_staged() returns void
language plpgsql security definer set search_path from current as $fn$
begin
    insert into run_label_top (run_id, position, probability, record_id)
    select x.run_id, (u.ord - 1)::smallint, u.p, x.record_id
    from (select s.run_id, s.record_id, s.probabilities
          from score_staging st join scores s on s.model_id = st.model_id and s.record_id = st.record_id
          union
          select r.run_id, s.record_id, s.probabilities
          from score_staging st
          join run_reused_scores r on r.model_id = st.model_id and r.record_id = st.record_id
          join scores s on s.model_id = st.model_id and s.record_id = st.record_id) x
    join run_label_top_cuts k on k.run_id = x.run_id and k.state = 'complete'
    cross join lateral unnest(x.probabilities) with ordinality as u (p, ord)
    where u.p >= coalesce(k.cuts[u.ord], '-Infinity'::real)
    on conflict do nothing;
end
$fn$;

-- The fold: the batch rows of the given runs (those no other transaction holds) into run_label_top, keeping only
-- entries at or above the cuts, and the entries below the cuts dropped.
create function run_label_top_compact(p_runs uuid[]) returns void
language plpgsql security definer set search_path from current as $fn$
declare
    run uuid;
    run_cuts real[];
begin
    -- Only complete lists: a pending or invalid run's writers send no entries (its batch rows, if any, go with a rebuild).
    for run in select k.run_id from run_label_top_cuts k where k.run_id = any (p_runs) and k.state = 'complete' order by 1 loop
        select k.cuts into run_cuts from run_label_top_cuts k where k.run_id = run;
        with picked as (
            select ctid from run_label_top_batches where run_id = run for update skip locked
        ), taken as (
            delete from run_label_top_batches b using picked p where b.ctid = p.ctid
            returning b.record_ids, b.positions, b.rows, b.probabilities
        )
        insert into run_label_top (run_id, position, probability, record_id)
        select run, u.position, u.p, t.record_ids[u.r + 1]
        from taken t
        cross join lateral unnest(t.positions, t.rows, t.probabilities) as u (position, r, p)
        where u.p >= coalesce(run_cuts[u.position + 1], '-Infinity'::real)
        on conflict do nothing;

        delete from run_label_top e
        using unnest(run_cuts) with ordinality as c (cut, ord)
        where e.run_id = run and e.position = c.ord - 1 and c.cut is not null and e.probability < c.cut;
    end loop;
end
$fn$;

-- Rebuilds a run's list from its rows (an operator's step after a write that made it invalid, and the 10M-row loader):
-- cuts from the run's bucket counts (per label the lowest grid threshold with at least p_top of the run's rows at or
-- above it), entries from a pass over the run's rows and those it reuses. Holds writers of scores back meanwhile (a
-- share lock, as an off-grid threshold change does): minutes at millions of rows.
create function run_label_top_rebuild(p_run uuid, p_top integer default 1000, p_only_pending boolean default false) returns void
language plpgsql security definer set search_path from current as $fn$
declare
    run_cuts real[];
begin
    -- The run's row first: the result writer share-locks it before anything else in a batch, so this waits for the
    -- run's batches in flight and holds new ones back; then the tables, for the writers of other runs that reuse or
    -- replace rows this run counts.
    perform 1 from runs where run_id = p_run for update;
    if not found then
        raise exception 'run % does not exist', p_run using errcode = 'no_data_found';
    end if;
    if p_only_pending and not exists (select 1 from run_label_top_cuts k where k.run_id = p_run and k.state = 'pending') then
        return;
    end if;
    lock table scores in share mode;
    lock table run_reused_scores in share mode;

    -- Per label the bucket where the top p_top rows end (summing from the highest bucket down), as a grid threshold:
    -- bucket 2k + 1 or 2k + 2 gives g_k, bucket 0 gives no cut.
    with cells as (
        select u.cell / 2003 as position, u.cell % 2003 as bucket, sum(u.n) as n
        from run_label_buckets rb cross join lateral unnest(rb.cells, rb.counts) as u (cell, n)
        where rb.run_id = p_run and rb.claim_xid is null
        group by 1, 2
    ), ends as (
        select distinct on (a.position) a.position, a.bucket
        from (select c.position, c.bucket, sum(c.n) over (partition by c.position order by c.bucket desc) as above from cells c) a
        where a.above >= p_top
        order by a.position, a.bucket desc
    )
    select array_agg(case when e.bucket is null or e.bucket = 0 then null
                          else (least((e.bucket - 1) / 2, 1000) / 1000::float8)::real end order by l.position)
    into run_cuts
    from generate_series(0, coalesce((select cardinality(m.label_codes) from runs r join models m on m.model_id = r.model_id
                                      where r.run_id = p_run), 0) - 1) l (position)
    left join ends e on e.position = l.position;

    delete from run_label_top where run_id = p_run;
    delete from run_label_top_batches where run_id = p_run;
    insert into run_label_top (run_id, position, probability, record_id)
    select p_run, (u.ord - 1)::smallint, u.p, x.record_id
    from (select s.record_id, s.probabilities from scores s where s.run_id = p_run
          union all
          select s.record_id, s.probabilities from run_reused_scores r
          join scores s on s.model_id = r.model_id and s.record_id = r.record_id where r.run_id = p_run) x
    cross join lateral unnest(x.probabilities) with ordinality as u (p, ord)
    where u.p >= coalesce(run_cuts[u.ord], '-Infinity'::real)
    on conflict do nothing;

    insert into run_label_top_cuts as k (run_id, state, cuts) values (p_run, 'complete', run_cuts)
    on conflict (run_id) do update set state = 'complete', cuts = excluded.cuts, updated_at = now();
end
$fn$;

-- The writer's fold: each of the given runs still 'pending' with at least p_rows rows (written or reused) gets its
-- list (run_label_top_rebuild), one run per call at most, so a fold is held up once.
create function run_label_top_establish(p_runs uuid[], p_rows bigint) returns void
language plpgsql security definer set search_path from current as $fn$
declare
    run uuid;
begin
    for run in select k.run_id from run_label_top_cuts k where k.run_id = any (p_runs) and k.state = 'pending' order by 1 loop
        -- The run's rows as its progress minutes count them (written and reused; a few rows per run, not a pass).
        if (select coalesce(sum(m.records_scored), 0) from run_progress_minutes m where m.run_id = run) >= p_rows then
            perform run_label_top_rebuild(run, 1000, true);
            return;
        end if;
    end loop;
end
$fn$;

revoke execute on function run_label_top_rebuild(uuid, integer, boolean) from public;

grant select on run_label_top, run_label_top_cuts, run_label_top_batches to hubert_dashboard;
