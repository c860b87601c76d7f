-- The flagged-records page at scale (issue 14): a run's flagged records for one label, highest probability first,
-- read every row of the run (19.4 s warm, about 80 s cold at 10,000,000 rows). Now each run keeps, per label, the
-- entries of its highest rows in an index in page order, complete at or above a per-label cut, and the dashboard serves
-- a page from them when the page ends at or above the cut; otherwise (a deep page, a threshold below the cut, a run
-- whose list is not complete) it reads the rows as before (src/Silo/Host/Dashboard/DashboardReviewQueries.cs).
--
-- Page order: probability descending (NaN above every number, as Postgres orders it), then record_id ascending in
-- the "C" collation (byte order of the UTF-8 text: the same on every database, and what the writer compares with).
-- A cut is a position in page order, a keyset (probability, record_id): cuts[i] and cut_records[i] of label i (a null
-- record, or none, is past the last record: every row at the cut's probability is above it; a null cut, or none, is
-- below every row). A row is at or above the cut when run_label_top_at_or_above says so. The keyset matters with
-- ties: with a cut on the probability alone, every row that ties a label's top value (model outputs saturate at 1.0;
-- `bench write` cycles through 64 vectors) would add an entry that no raise could drop; and ties go to the lowest
-- record ids, so that rows arriving in rising record order (a shard's files, `bench write`) do not enter a list full
-- of ties at all.
--
-- The rule every part keeps: while a run's list is 'complete', every row the run counts (the rows it wrote, and those
-- it reused through run_reused_scores) at or above a label's cut has an entry (run, label, its probability, record).
-- Entries may be stale (a row replaced, deleted, or no longer the run's): the reader checks each one it shows against
-- scores, a primary-key look-up. A cut only ever rises (entries below a risen cut are simply more than needed).
--
-- Who keeps it:
-- * The result writer (src/Silo/Storage/RunLabelTop.cs), in each batch's own transaction, for runs 'establishing' or
--   'complete': on the direct COPY path it sends the batch's entries at or above the cuts it read (the keyset rule,
--   compared in the writer: the "C" collation is byte order) as one row of
--   run_label_top_batches (arrays; one row per run and batch, not one per entry); on the staging path (stored keys:
--   retries, replacements, reuse) one insert of the entries of every run that counts the stored rows, after a share
--   lock of those runs' cuts rows. It says so in the transaction (hubert.top_entries = 'on').
-- * The writer's fold (every few batches, a transaction of its own) moves the batch rows of complete runs into
--   run_label_top, keeping the entries at or above the cuts in keyset order (run_label_top_compact), and counts per
--   label the entries it added (the batch rows sent while a run's list is made wait for step 3 below, which moves them
--   with the cuts it raised: the rows that tie the provisional cut, all sent, mostly never reach the index);
--   once a complete run's label has 2 x 1,000 added since its last raise, the cut rises to the list's 1,000th entry in
--   page order and the entries below it are deleted (run_label_top_raise_to_list): an index range of 1,000 entries read
--   and about as many deleted per 1,000 added.
-- * Any other write of scores or run_reused_scores (plain SQL, an older writer) marks the runs it touches 'invalid'
--   (a statement trigger, not even called when the writer says it keeps the entries), and their pages are read from
--   the rows until an operator rebuilds the list (run_label_top_rebuild, which holds writers back: an operator's step).
-- * A new run starts 'pending': writers send no entries, and its pages read its rows (cheap while it is small). Its
--   list is made once the run has 200,000 rows (as its progress minutes count them), in three steps, none of which
--   holds writers for a pass over the rows:
--   1. run_label_top_begin, in the writer's fold: locks the run's row (for update: it waits for the run's batches in
--      flight, which share-lock that row first, and holds new ones back only until it commits, milliseconds) and sets
--      the state 'establishing' with provisional cuts on the probability from the run's bucket counts
--      (run_label_buckets: per label the grid threshold where the top 1,000 rows end).
--   2. The pass, off the batch's path (a background task of the writer, on a connection of its own, under a session
--      advisory lock per run so one writer does it): a REPEATABLE READ transaction, whose snapshot is taken after step 1
--      committed, reads the run's rows (written and reused) and inserts per label the 1,000 highest in page order
--      (run_label_top_fill, on conflict do nothing).
--   3. run_label_top_finish: per label the cut rises to the greater of the provisional cut and the 1,000th entry of
--      the list and the writers' batch rows together (entries both), the list's entries below it are deleted, the
--      state becomes 'complete' (only from 'establishing': a run made invalid meanwhile stays so), and the batch rows
--      are moved into the list with the raised cuts.
--   Why no row is missed. A row the run counts was stored by a transaction W. If W committed before step 1 committed,
--   it is in the pass's snapshot (taken after step 1 committed). Otherwise W held the run's row share lock (its own
--   run: the result writer locks its runs' rows before anything) or the cuts row share lock (the staging path, for the
--   runs that reuse or counted a replaced row) at a point after step 1's update was visible to it: the lock waits for
--   step 1 to commit, and W's reads of the state come after the lock, so W saw 'establishing' and sent its entries at
--   or above the provisional cuts. So after step 2 every row either is among the pass's top 1,000 of its label in the
--   snapshot, or below its 1,000th entry, or has an entry at or above the provisional cut from its writer. A cut at or
--   above both (step 3) leaves no row above it without an entry. A row that W wrote before step 1 but the pass ranks
--   below its 1,000th entry cannot rise: a row's probability changes only by a new write (a replacement), which is a
--   W of its own. Writes that do not keep entries mark the run invalid, which step 3 does not undo.
--   If the writer stops between the steps, the run stays 'establishing' (writers keep sending entries, its pages read
--   its rows) and the next fold of any writer of the run does steps 2 and 3 again (both idempotent).
--   Sending entries from a run's first row instead cost more than the rows themselves in `bench write` (each of a
--   run's first n rows is among its top 1,000 of a label with odds 1,000 / n, 164 labels: about 9 entries per row over
--   100,000 rows; docs/benchmarks.md).
-- * A run of before this migration starts 'pending' when it has no rows yet, else 'invalid'.
-- Threshold changes do not touch the list: a threshold only cuts the ordered list.

create table run_label_top_cuts (
    run_id uuid primary key references runs (run_id) on delete cascade,
    -- 'pending': a new run, no list yet (its pages read the rows, cheap while it is small); 'establishing': writers
    -- send entries, the pass is under way (pages read the rows); 'complete': the rule above holds; 'invalid': rows came
    -- through a path that does not keep the entries.
    state text not null check (state in ('pending', 'establishing', 'complete', 'invalid')),
    -- Per label (index position + 1) the cut's probability; null (or an element past the end) is minus infinity: every
    -- row enters.
    cuts real[],
    -- Per label the cut's record (page order: record_id ascending within a probability, "C" collation); null (or past
    -- the end): every row at the cut's probability is at or above the cut.
    cut_records text[],
    -- Per label the entries the fold added since the label's cut last rose from the list (a trigger, not a count).
    added integer[],
    updated_at timestamptz not null default now()
);

-- Entries, in page order in their index.
create table run_label_top (
    run_id uuid not null references runs (run_id) on delete cascade,
    position smallint not null,
    probability real not null,
    record_id text collate "C" not null
);

create unique index run_label_top_page_order on run_label_top (run_id, position, probability desc, record_id);

-- Whether (p, r) is at or above the cut (cut, cut_record) in page order (the header). Inlined by the planner.
create function run_label_top_at_or_above(p real, r text, cut real, cut_record text) returns boolean
language sql immutable parallel safe as $fn$
    select cut is null or p > cut or (p = cut and (cut_record is null or r collate "C" <= cut_record collate "C"))
$fn$;

-- The writer's entries of one batch, awaiting the next fold: entry i is label positions[i] of record record_ids[i] at
-- probabilities[i]. The record is repeated per entry: the fold and the reader read the three arrays in one unnest
-- (an array stored out of line is fetched whole at each subscript: a record looked up by index per entry cost the fold
-- about 50 us an entry).
create table run_label_top_batches (
    run_id uuid not null references runs (run_id) on delete cascade,
    record_ids text[] not null,
    positions smallint[] not null,
    probabilities real[] not null,
    check (cardinality(positions) = cardinality(record_ids) and cardinality(record_ids) = cardinality(probabilities))
);

alter table run_label_top_batches alter column record_ids set storage external;
alter table run_label_top_batches alter column positions set storage external;
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

-- Per label of the run (index position + 1) the grid threshold of the bucket where its top p_top rows end in its
-- bucket counts (summing from the highest bucket down; bucket 2k + 1 or 2k + 2 gives g_k, bucket 0 or fewer rows no
-- cut): at least p_top of the run's counted rows are at or above it.
create function run_label_top_bucket_cuts(p_run uuid, p_top integer) returns real[]
language sql stable security definer set search_path from current as $fn$
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
    from generate_series(0, coalesce((select cardinality(m.label_codes) from runs r join models m on m.model_id = r.model_id
                                      where r.run_id = p_run), 0) - 1) l (position)
    left join ends e on e.position = l.position
$fn$;

-- The writer's staging path: after its upsert and its reuse rows, the entries of every run that counts one of the
-- staged keys' stored rows (its own run, and each run that reuses it), from the stored probabilities, for runs
-- establishing or complete. Those runs' cuts rows are share-locked first, in a statement of their own, and the states
-- read after: a run_label_top_begin in flight is waited for, and one committed is seen (the header's visibility rule).
create function run_label_top_add_staged() returns void
language plpgsql security definer set search_path from current as $fn$
begin
    perform 1 from run_label_top_cuts k
    where k.run_id in (select s.run_id from score_staging st join scores s on s.model_id = st.model_id and s.record_id = st.record_id
                       union
                       select r.run_id from score_staging st join run_reused_scores r on r.model_id = st.model_id and r.record_id = st.record_id)
    order by k.run_id
    for share of k;

    insert into run_label_top (run_id, position, probability, record_id)
    select x.run_id, (u.ord - 1)::smallint, u.p, x.record_id
    from (select s.run_id, s.record_id, s.probabilities
          from score_staging st join scores s on s.model_id = st.model_id and s.record_id = st.record_id
          union
          select r.run_id, s.record_id, s.probabilities
          from score_staging st
          join run_reused_scores r on r.model_id = st.model_id and r.record_id = st.record_id
          join scores s on s.model_id = st.model_id and s.record_id = st.record_id) x
    join run_label_top_cuts k on k.run_id = x.run_id and k.state in ('establishing', 'complete')
    cross join lateral unnest(x.probabilities) with ordinality as u (p, ord)
    where run_label_top_at_or_above(u.p, x.record_id, k.cuts[u.ord], k.cut_records[u.ord])
    on conflict do nothing;
end
$fn$;

-- Raises the cut of each label of p_positions of a run to the list's p_top-th entry in page order (where the list has
-- that many) and deletes the entries below the cut; the added counts of those labels start again. The caller holds the
-- run's cuts row (for update), and the list is complete or being made complete at or above every cut it raises to.
create function run_label_top_raise_to_list(p_run uuid, p_positions integer[], p_top integer) returns void
language plpgsql security definer set search_path from current as $fn$
declare
    pos integer;
    old_p real;
    old_r text;
    new_p real;
    new_r text;
begin
    foreach pos in array p_positions loop
        select e.probability, e.record_id into new_p, new_r
        from run_label_top e where e.run_id = p_run and e.position = pos
        order by e.probability desc, e.record_id offset p_top - 1 limit 1;
        select k.cuts[pos + 1], k.cut_records[pos + 1] into old_p, old_r from run_label_top_cuts k where k.run_id = p_run;
        if new_p is not null
           and (old_p is null or new_p > old_p or (new_p = old_p and (old_r is null or new_r collate "C" < old_r collate "C"))) then
            update run_label_top_cuts k
            set cuts = array(select case when g.i = pos + 1 then new_p else k.cuts[g.i] end
                             from generate_series(1, greatest(coalesce(cardinality(k.cuts), 0), pos + 1)) g (i) order by g.i),
                cut_records = array(select case when g.i = pos + 1 then new_r else k.cut_records[g.i] end
                                    from generate_series(1, greatest(coalesce(cardinality(k.cut_records), 0), pos + 1)) g (i) order by g.i),
                updated_at = now()
            where k.run_id = p_run;
            delete from run_label_top e
            where e.run_id = p_run and e.position = pos and not run_label_top_at_or_above(e.probability, e.record_id, new_p, new_r);
        end if;
    end loop;
    update run_label_top_cuts k
    set added = array(select case when g.i - 1 = any (p_positions) then 0 else coalesce(k.added[g.i], 0) end
                      from generate_series(1, coalesce(cardinality(k.added), 0)) g (i) order by g.i)
    where k.run_id = p_run;
end
$fn$;

-- The fold: the batch rows of the given complete runs (those no other transaction holds) into run_label_top, keeping
-- only entries at or above the cuts; each label with 2 x p_top entries added since its cut last rose gets its cut
-- raised to the list (run_label_top_raise_to_list).
create function run_label_top_compact(p_runs uuid[], p_top integer default 1000) returns void
language plpgsql security definer set search_path from current as $fn$
declare
    run uuid;
    run_state text;
    run_cuts real[];
    run_records text[];
    run_added integer[];
    full_labels integer[];
begin
    -- A pending or invalid run's writers send no entries (its batch rows, if any, go with a rebuild); an establishing
    -- run's wait for run_label_top_finish.
    for run in select k.run_id from run_label_top_cuts k where k.run_id = any (p_runs) and k.state = 'complete' order by 1 loop
        select k.state, k.cuts, k.cut_records into run_state, run_cuts, run_records
        from run_label_top_cuts k where k.run_id = run for update;
        if run_state <> 'complete' then
            continue;
        end if;
        with picked as (
            select ctid from run_label_top_batches where run_id = run for update skip locked
        ), taken as (
            delete from run_label_top_batches b using picked p where b.ctid = p.ctid
            returning b.record_ids, b.positions, b.probabilities
        ), inserted as (
            insert into run_label_top (run_id, position, probability, record_id)
            select run, u.position, u.p, u.record_id
            from taken t
            cross join lateral unnest(t.positions, t.record_ids, t.probabilities) as u (position, record_id, p)
            where run_label_top_at_or_above(u.p, u.record_id, run_cuts[u.position + 1], run_records[u.position + 1])
            on conflict do nothing
            returning position
        ), counts as (
            select a.position, count(*)::integer as n from inserted a group by 1
        )
        select array(select coalesce(k.added[g.i], 0) + coalesce(c.n, 0)
                     from run_label_top_cuts k
                     cross join generate_series(1, greatest(coalesce(cardinality(k.added), 0), coalesce((select max(c2.position) + 1 from counts c2), 0))) g (i)
                     left join counts c on c.position = g.i - 1
                     where k.run_id = run order by g.i)
        into run_added;
        update run_label_top_cuts k set added = run_added where k.run_id = run;

        if run_state = 'complete' then
            select array_agg(g.i - 1) into full_labels from unnest(run_added) with ordinality g (n, i) where g.n >= 2 * p_top;
            if full_labels is not null then
                perform run_label_top_raise_to_list(run, full_labels, p_top);
            end if;
        end if;
    end loop;
end
$fn$;

-- Step 1 of making a run's list (the header): each of the given runs still 'pending' with at least p_rows rows (written
-- or reused, as its progress minutes count them), one per call at most, moves to 'establishing' with provisional cuts
-- from its bucket counts. Returns the runs of p_runs that are 'establishing' now (those moved and those left so by a
-- writer that stopped), for steps 2 and 3.
create function run_label_top_begin(p_runs uuid[], p_rows bigint, p_top integer default 1000) returns setof uuid
language plpgsql security definer set search_path from current as $fn$
declare
    run uuid;
begin
    for run in select k.run_id from run_label_top_cuts k where k.run_id = any (p_runs) and k.state = 'pending' order by 1 loop
        if (select coalesce(sum(m.records_scored), 0) from run_progress_minutes m where m.run_id = run) >= p_rows then
            -- The run's row: waits for the run's batches in flight (they share-lock it first) and holds new ones back
            -- until this commits.
            perform 1 from runs where run_id = run for update;
            update run_label_top_cuts k
            set state = 'establishing', cuts = run_label_top_bucket_cuts(run, p_top), cut_records = null, added = null,
                updated_at = now()
            where k.run_id = run and k.state = 'pending';
            exit;
        end if;
    end loop;
    return query select k.run_id from run_label_top_cuts k where k.run_id = any (p_runs) and k.state = 'establishing';
end
$fn$;

-- Step 2 (the header), in a REPEATABLE READ transaction begun after step 1 committed: the entries the pass chose
-- (the writer read the run's rows in this transaction's snapshot and sends, per label, its candidates: every row whose
-- probability is at or above the p_top-th highest of the label, ties included); per label the p_top highest in page
-- order go in. Nothing when the run is no longer 'establishing'.
create function run_label_top_fill(p_run uuid, p_positions smallint[], p_records text[], p_probabilities real[], p_top integer default 1000)
returns void
language plpgsql security definer set search_path from current as $fn$
begin
    if not exists (select 1 from run_label_top_cuts k where k.run_id = p_run and k.state = 'establishing') then
        return;
    end if;
    insert into run_label_top (run_id, position, probability, record_id)
    select p_run, c.position, c.p, c.record_id
    from (select u.position, u.p, u.record_id,
                 row_number() over (partition by u.position order by u.p desc, u.record_id collate "C") as n
          from unnest(p_positions, p_records, p_probabilities) as u (position, record_id, p)) c
    where c.n <= p_top
    on conflict do nothing;
end
$fn$;

-- Step 3 (the header): per label the cut rises to the p_top-th entry in page order of the list and the writers' batch
-- rows together (the rows the pass read and those written since) where that is above the provisional cut, the list's
-- entries below it are deleted, the run is 'complete', and the batch rows are moved into the list with those cuts (most
-- of the ties of a provisional cut fall below them and never reach the index). Nothing when it is no longer
-- 'establishing'.
create function run_label_top_finish(p_run uuid, p_top integer default 1000) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    perform 1 from run_label_top_cuts k where k.run_id = p_run and k.state = 'establishing' for update of k;
    if not found then
        return;
    end if;

    create temporary table run_label_top_new_cuts on commit drop as
    select r.position, r.probability, r.record_id
    from (select x.position, x.probability, x.record_id,
                 row_number() over (partition by x.position order by x.probability desc, x.record_id) as n
          from (select e.position, e.probability, e.record_id from run_label_top e where e.run_id = p_run
                union
                select u.position, u.p, u.record_id collate "C"
                from run_label_top_batches b
                cross join lateral unnest(b.positions, b.record_ids, b.probabilities) as u (position, record_id, p)
                where b.run_id = p_run) x) r
    where r.n = p_top;

    -- Only where the new cut is above the old one (a label with fewer than p_top entries keeps its cut).
    delete from run_label_top_new_cuts c
    using run_label_top_cuts k
    where k.run_id = p_run and k.cuts[c.position + 1] is not null
      and not (c.probability > k.cuts[c.position + 1]
               or (c.probability = k.cuts[c.position + 1]
                   and (k.cut_records[c.position + 1] is null or c.record_id < k.cut_records[c.position + 1] collate "C")));

    update run_label_top_cuts k
    set cuts = array(select coalesce(c.probability, k.cuts[g.i])
                     from generate_series(1, greatest(coalesce(cardinality(k.cuts), 0), coalesce((select max(position) + 1 from run_label_top_new_cuts), 0))) g (i)
                     left join run_label_top_new_cuts c on c.position = g.i - 1 order by g.i),
        cut_records = array(select case when c.position is not null then c.record_id::text else k.cut_records[g.i] end
                            from generate_series(1, greatest(coalesce(cardinality(k.cuts), 0), coalesce((select max(position) + 1 from run_label_top_new_cuts), 0))) g (i)
                            left join run_label_top_new_cuts c on c.position = g.i - 1 order by g.i),
        added = null, state = 'complete', updated_at = now()
    where k.run_id = p_run;

    delete from run_label_top e
    using run_label_top_new_cuts c
    where e.run_id = p_run and e.position = c.position
      and not run_label_top_at_or_above(e.probability, e.record_id, c.probability, c.record_id);

    drop table run_label_top_new_cuts;
    perform run_label_top_compact(array[p_run], p_top);
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

    run_cuts := run_label_top_bucket_cuts(p_run, p_top);

    delete from run_label_top where run_id = p_run;
    delete from run_label_top_batches where run_id = p_run;
    insert into run_label_top (run_id, position, probability, record_id)
    select p_run, (u.ord - 1)::smallint, u.p, x.record_id
    from (select s.record_id, s.probabilities from scores s where s.run_id = p_run
          union all
          select s.record_id, s.probabilities from run_reused_scores r
          join scores s on s.model_id = r.model_id and s.record_id = r.record_id where r.run_id = p_run) x
    cross join lateral unnest(x.probabilities) with ordinality as u (p, ord)
    where run_label_top_at_or_above(u.p, x.record_id, run_cuts[u.ord], null)
    on conflict do nothing;

    insert into run_label_top_cuts as k (run_id, state, cuts) values (p_run, 'complete', run_cuts)
    on conflict (run_id) do update set state = 'complete', cuts = excluded.cuts, cut_records = null, added = null, updated_at = now();
end
$fn$;

revoke execute on function run_label_top_rebuild(uuid, integer, boolean) from public;

grant select on run_label_top, run_label_top_cuts, run_label_top_batches to hubert_dashboard;
