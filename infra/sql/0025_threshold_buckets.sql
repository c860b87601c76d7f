-- Threshold changes at scale (issue 14): a change of a label threshold recounted run_label_positives from every score
-- row under a share lock on scores (6.5-8.8 s at 10M rows, every writer waiting). Now each run keeps, per label, how
-- many of its rows fall in each bucket of a fixed probability grid, and a change to thresholds on the grid recounts
-- run_label_positives from those counts alone: no scan of scores, and writers wait only on the per-model advisory
-- lock (0020_evaluations.sql) for the moment the recount takes.
--
-- The grid: the thresholds g_k = k/1000 for k = 0..1000, as real (the float nearest k/1000: the value Postgres stores
-- for the literal, e.g. 0.3 or 0.015). A probability p of a label falls in one bucket of 2003:
--   bucket 0             p < 0
--   bucket 2k + 1        p = g_k
--   bucket 2k + 2        g_k < p < g_(k+1)             (k = 0..999)
--   bucket 2002          p > 1, or NaN (which Postgres orders above every number)
-- so the rows strictly above g_k are those of buckets >= 2k + 2 and those at or above it those of buckets >= 2k + 1:
-- both the global thresholds (strictly above) and a threshold set's (at or above) are sums of buckets. A row that
-- lacks the label's probability is in no bucket (it is not positive at any threshold, as before).
--
-- A threshold off the grid (0.12345) still works exactly as before, through the recount from the rows (slow at
-- scale: docs/operations.md). `hubert-ecg thresholds activate` says when a set has off-grid thresholds.
--
-- The counts are rows of deltas, only ever inserted (as 0019_shard_counters.sql does with shard counters), so writers
-- of one run never wait on each other's counter rows: one row per statement per run, with the nonzero cells of the
-- statement's rows as two parallel arrays (cell = position * 2003 + bucket, count). The scores triggers add them
-- (negative for removed rows); now and then a trigger folds a run's rows into one.

create table run_label_buckets (
    run_id uuid not null references runs (run_id) on delete cascade,
    -- position * 2003 + bucket, each once, in no particular order (counts[i] is the count of cells[i]: both arrays
    -- come from one aggregation over the same rows, so they are aligned; no sort is paid for an order no reader needs).
    cells integer[] not null,
    -- Rows per cell (negative: rows removed).
    counts bigint[] not null check (cardinality(counts) = cardinality(cells)),
    -- A writer's claimed counts awaiting the insert trigger's check (label_buckets_claim): the claiming transaction
    -- and the rows it claims for the run. Cleared by the trigger when the claim holds; a row still carrying them
    -- after its transaction ended was never checked and counts for nothing (the next fold removes it).
    claim_xid xid8,
    claim_rows bigint
);

-- Arrays of random-looking integers do not compress: no pglz attempt before they move out of line.
alter table run_label_buckets alter column cells set storage external;
alter table run_label_buckets alter column counts set storage external;

create index run_label_buckets_run on run_label_buckets (run_id);
create index run_label_buckets_claim on run_label_buckets (claim_xid) where claim_xid is not null;

-- The bucket of a probability (see above). Arithmetic on float8, which holds p * 1000 exactly: with K = floor(p * 1000),
-- p is g_K, g_(K+1) (when that float lies just below (K+1)/1000) or strictly between them. (k / 1000::float8)::real is
-- the same float as the literal k/1000 (checked below for every k). One expression, so that Postgres inlines it.
create function label_grid_bucket(p real) returns integer
language sql immutable parallel safe as $fn$
    select case
        when p > 1 then 2002
        when p < 0 then 0
        when p = ((floor(p::float8 * 1000::float8) + 1) / 1000::float8)::real then 2 * floor(p::float8 * 1000::float8)::integer + 3
        when p = (floor(p::float8 * 1000::float8) / 1000::float8)::real then 2 * floor(p::float8 * 1000::float8)::integer + 1
        else 2 * floor(p::float8 * 1000::float8)::integer + 2
    end
$fn$;

-- The grid index k of a threshold equal to g_k, else null (off the grid).
create function label_grid_index(t real) returns integer
language sql immutable strict parallel safe as $fn$
    select case when t >= 0 and t <= 1 and t = (round(t::float8 * 1000::float8) / 1000::float8)::real
                then round(t::float8 * 1000::float8)::integer end
$fn$;

-- The lowest bucket counted positive at a grid threshold: strictly above g_k, or at or above it.
create function label_grid_first_bucket(t real, inclusive boolean) returns integer
language sql immutable strict parallel safe as $fn$
    select 2 * label_grid_index(t) + case when inclusive then 1 else 2 end
$fn$;

do $do$
begin
    if exists (select 1 from generate_series(0, 1000) k
               where (k / 1000::float8)::real <> (k::numeric / 1000)::real
                  or label_grid_index((k::numeric / 1000)::real) is distinct from k
                  or label_grid_bucket((k::numeric / 1000)::real) <> 2 * k + 1) then
        raise exception 'the threshold grid does not round-trip through float8 on this server';
    end if;
end
$do$;

-- A writer's own bucket counts of the rows it is about to insert into scores for one run (src/Silo/Storage/
-- LabelBuckets.cs): the insert trigger takes them when every claim of the transaction names exactly the rows the
-- statement added per run, else drops them and counts from the rows. Counting 164 labels per row in SQL is the cost
-- this saves, as hubert.label_positives does for the positives (0018_fast_score_writes.sql).
create function label_buckets_claim(p_run uuid, p_rows bigint, p_cells integer[], p_counts bigint[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    if p_run is null or p_rows is null or p_rows < 1 or p_cells is null or p_counts is null
       or cardinality(p_cells) <> cardinality(p_counts) then
        raise exception 'label bucket claim for run %: rows must be positive and cells and counts of one length', p_run
            using errcode = 'invalid_parameter_value';
    end if;
    insert into run_label_buckets (run_id, cells, counts, claim_xid, claim_rows)
    values (p_run, p_cells, p_counts, pg_current_xact_id(), p_rows);
end
$fn$;

-- Folds the delta rows of the given runs into one row per run (rows other transactions hold are left; claims never
-- checked are dropped).
create function run_label_buckets_fold(p_runs uuid[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    with picked as (
        select ctid from run_label_buckets
        where run_id = any (p_runs) and (claim_xid is null or claim_xid <> pg_current_xact_id())
        for update skip locked
    ), gone as (
        delete from run_label_buckets b using picked p where b.ctid = p.ctid
        returning b.run_id, b.cells, b.counts, b.claim_xid
    )
    insert into run_label_buckets (run_id, cells, counts)
    select x.run_id, array_agg(x.cell), array_agg(x.n)
    from (select g.run_id, u.cell, sum(u.n)::bigint as n
          from gone g cross join lateral unnest(g.cells, g.counts) as u (cell, n)
          where g.claim_xid is null
          group by 1, 2
          having sum(u.n) <> 0) x
    group by 1;
end
$fn$;

-- scores: rows added. As in 0020, plus the bucket counts: the writer's claims when they hold, else from the rows.
create or replace function dashboard_scores_added() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    writer text := dashboard_writer_name();
    model text;
    models integer;
    positions integer[];
    thresholds real[];
    inclusive boolean[];
    claim_text text := nullif(current_setting('hubert.label_positives', true), '');
    claim jsonb;
    claim_holds boolean;
    buckets_claimed boolean;
    buckets_hold boolean := false;
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

    -- Bucket counts: a claim serves one statement, whether it holds or not.
    buckets_claimed := exists (select 1 from run_label_buckets b where b.claim_xid = pg_current_xact_id());
    if buckets_claimed then
        buckets_hold := not exists (
            select 1
            from (select n.run_id, count(*) as n from added_rows n group by 1) a
            full join (select b.run_id, sum(b.claim_rows) as n from run_label_buckets b
                       where b.claim_xid = pg_current_xact_id() group by 1) c using (run_id)
            where a.n is distinct from c.n);
        if buckets_hold then
            update run_label_buckets set claim_xid = null, claim_rows = null where claim_xid = pg_current_xact_id();
        else
            delete from run_label_buckets where claim_xid = pg_current_xact_id();
        end if;
    end if;
    if not buckets_hold then
        insert into run_label_buckets (run_id, cells, counts)
        select x.run_id, array_agg(x.cell), array_agg(x.n)
        from (select n.run_id, (u.ord::integer - 1) * 2003 + label_grid_bucket(u.p) as cell, count(*) as n
              from added_rows n cross join lateral unnest(n.probabilities) with ordinality as u (p, ord)
              where u.p is not null
              group by 1, 2) x
        group by 1;
    end if;

    if claim_text is not null then
        -- A claim serves one statement, whether it holds or not.
        perform set_config('hubert.label_positives', '', true);
        claim := claim_text::jsonb;
    end if;

    select count(distinct n.model_id) into models from added_rows n;
    for model in select distinct n.model_id from added_rows n order by 1 loop
        -- Shared: waits only while a threshold change for this model recounts; read the thresholds after it.
        perform pg_advisory_xact_lock_shared(17017, dashboard_model_lock_key(model));
        select array_agg(t.position order by t.position), array_agg(t.threshold order by t.position),
               array_agg(t.inclusive order by t.position)
        into positions, thresholds, inclusive
        from dashboard_model_label_thresholds t
        where t.model_id = model;

        claim_holds := claim is not null
            and models = 1
            and not (true = any (inclusive))
            and array(select e::integer from jsonb_array_elements_text(claim -> 'positions') e) = positions
            and array(select e::real from jsonb_array_elements_text(claim -> 'thresholds') e) = thresholds
            and not exists (
                select 1 from jsonb_array_elements(claim -> 'runs') r
                where jsonb_array_length(r -> 'positives') <> cardinality(positions))
            and not exists (
                select 1
                from (select n.run_id, count(*) as n from added_rows n group by 1) a
                full join (select (r ->> 'run')::uuid as run_id, sum((r ->> 'rows')::bigint) as n
                           from jsonb_array_elements(claim -> 'runs') r group by 1) c using (run_id)
                where a.n is distinct from c.n);

        if claim_holds then
            insert into run_label_positives as p (run_id, position, positives)
            select c.run_id, c.position, sum(c.n)
            from (select (r ->> 'run')::uuid as run_id, positions[k.i::integer] as position, k.e::bigint as n
                  from jsonb_array_elements(claim -> 'runs') r
                  cross join lateral jsonb_array_elements_text(r -> 'positives') with ordinality k (e, i)) c
            where c.n > 0
            group by 1, 2
            order by 1, 2
            on conflict (run_id, position) do update set positives = p.positives + excluded.positives;
        else
            insert into run_label_positives as p (run_id, position, positives)
            select n.run_id, t.position, count(*)
            from unnest(positions, thresholds, inclusive) as t (position, threshold, inclusive)
            cross join added_rows n
            where n.model_id = model
              and (n.probabilities[t.position + 1] > t.threshold or (t.inclusive and n.probabilities[t.position + 1] = t.threshold))
            group by 1, 2
            order by 1, 2
            on conflict (run_id, position) do update set positives = p.positives + excluded.positives;
        end if;
    end loop;

    -- About one statement in 16 folds the bucket rows of the runs it touched.
    if random() < 0.0625 then
        perform run_label_buckets_fold(array(select distinct n.run_id from added_rows n));
    end if;

    return null;
end
$fn$;

-- run_reused_scores: as in 0020, plus the bucket counts of the reused rows (read from the rows they reuse).
create or replace function dashboard_reused_added() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    writer text := dashboard_writer_name();
    model text;
    positions integer[];
    thresholds real[];
    inclusive boolean[];
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

    insert into run_label_buckets (run_id, cells, counts)
    select x.run_id, array_agg(x.cell), array_agg(x.n)
    from (select n.run_id, (u.ord::integer - 1) * 2003 + label_grid_bucket(u.p) as cell, count(*) as n
          from added_rows n
          join scores s on s.model_id = n.model_id and s.record_id = n.record_id
          cross join lateral unnest(s.probabilities) with ordinality as u (p, ord)
          where u.p is not null
          group by 1, 2) x
    group by 1;

    for model in select distinct n.model_id from added_rows n order by 1 loop
        perform pg_advisory_xact_lock_shared(17017, dashboard_model_lock_key(model));
        select array_agg(t.position order by t.position), array_agg(t.threshold order by t.position),
               array_agg(t.inclusive order by t.position)
        into positions, thresholds, inclusive
        from dashboard_model_label_thresholds t
        where t.model_id = model;

        insert into run_label_positives as p (run_id, position, positives)
        select n.run_id, t.position, count(*)
        from unnest(positions, thresholds, inclusive) as t (position, threshold, inclusive)
        cross join added_rows n
        join scores s on s.model_id = n.model_id and s.record_id = n.record_id
        where n.model_id = model
          and (s.probabilities[t.position + 1] > t.threshold or (t.inclusive and s.probabilities[t.position + 1] = t.threshold))
        group by 1, 2
        order by 1, 2
        on conflict (run_id, position) do update set positives = p.positives + excluded.positives;
    end loop;

    return null;
end
$fn$;

-- scores: rows removed (delete, or the old side of an update). As in 0020, plus negative bucket counts. Rows of a
-- run being deleted are left out (its bucket rows go with it).
create or replace function dashboard_scores_removed() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    model text;
    positions integer[];
    thresholds real[];
    inclusive boolean[];
begin
    update run_progress_minutes m
    set records_scored = m.records_scored - d.n
    from (select o.run_id, date_trunc('minute', o.scored_at) as minute, count(*) as n
          from removed_rows o group by 1, 2 order by 1, 2) d
    where m.run_id = d.run_id and m.minute = d.minute;

    insert into run_label_buckets (run_id, cells, counts)
    select x.run_id, array_agg(x.cell), array_agg(x.n)
    from (select o.run_id, (u.ord::integer - 1) * 2003 + label_grid_bucket(u.p) as cell, -count(*) as n
          from removed_rows o
          cross join lateral unnest(o.probabilities) with ordinality as u (p, ord)
          where u.p is not null and exists (select 1 from runs r where r.run_id = o.run_id)
          group by 1, 2) x
    group by 1;

    for model in select distinct o.model_id from removed_rows o order by 1 loop
        perform pg_advisory_xact_lock_shared(17017, dashboard_model_lock_key(model));
        select array_agg(t.position order by t.position), array_agg(t.threshold order by t.position),
               array_agg(t.inclusive order by t.position)
        into positions, thresholds, inclusive
        from dashboard_model_label_thresholds t
        where t.model_id = model;

        update run_label_positives p
        set positives = p.positives - d.n
        from (select o.run_id, t.position, count(*) as n
              from unnest(positions, thresholds, inclusive) as t (position, threshold, inclusive)
              cross join removed_rows o
              where o.model_id = model
                and (o.probabilities[t.position + 1] > t.threshold or (t.inclusive and o.probabilities[t.position + 1] = t.threshold))
              group by 1, 2 order by 1, 2) d
        where p.run_id = d.run_id and p.position = d.position;
    end loop;

    return null;
end
$fn$;

create or replace function dashboard_scores_truncated() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    delete from run_label_positives;
    delete from run_label_buckets;
    update run_progress_minutes set records_scored = 0 where records_scored <> 0;
    return null;
end
$fn$;

-- Rebuilds run_label_positives for the given models' runs and labels from the bucket counts, against the models'
-- effective thresholds, which must all be on the grid. The caller holds the models' advisory locks (17017, model)
-- exclusively: no writer of those models is between its bucket rows and its positives meanwhile.
create function label_positives_from_buckets(p_models text[], p_positions integer[]) returns void
language plpgsql security definer set search_path from current as $fn$
declare
    model text;
    first_buckets integer[];
begin
    delete from run_label_positives p
    using runs r
    where r.run_id = p.run_id and r.model_id = any (p_models) and p.position = any (p_positions);

    for model in select m from unnest(p_models) m order by 1 loop
        -- Per label (index position + 1) the lowest bucket counted positive; null for the labels not recounted. An
        -- array subscript per cell rather than a join, whose row estimates for unnest led the planner astray.
        select array_agg(case when t.position = any (p_positions) then label_grid_first_bucket(t.threshold, t.inclusive) end
                         order by t.position)
        into first_buckets
        from dashboard_model_label_thresholds t
        where t.model_id = model;

        insert into run_label_positives (run_id, position, positives)
        select b.run_id, u.cell / 2003, sum(u.n)
        from runs r
        join run_label_buckets b on b.run_id = r.run_id
        cross join lateral unnest(b.cells, b.counts) as u (cell, n)
        where r.model_id = model and b.claim_xid is null and u.cell % 2003 >= first_buckets[u.cell / 2003 + 1]
        group by 1, 2
        having sum(u.n) > 0;
    end loop;
end
$fn$;

-- A change of label_thresholds. On the grid (every model's effective threshold of every changed label): from the
-- bucket counts, holding each model's writers back only meanwhile (their advisory locks, in model order). Off the grid:
-- as in 0020 (a pass over every score row, every writer waiting on the share lock on scores).
create or replace function dashboard_recount_labels(p_positions integer[]) returns void
language plpgsql security definer set search_path from current as $fn$
declare
    model text;
begin
    perform pg_advisory_xact_lock(17017, 0);
    if not exists (select 1 from dashboard_model_label_thresholds t
                   where t.position = any (p_positions) and label_grid_index(t.threshold) is null) then
        -- In model order, as the scores triggers take them shared. No threshold changes meanwhile: every change
        -- holds (17017, 0) first.
        for model in select m.model_id from models m order by 1 loop
            perform pg_advisory_xact_lock(17017, dashboard_model_lock_key(model));
        end loop;
        perform label_positives_from_buckets(array(select m.model_id from models m), p_positions);
        return;
    end if;

    lock table scores in share mode;
    lock table run_reused_scores in share mode;
    delete from run_label_positives where position = any (p_positions);
    insert into run_label_positives (run_id, position, positives)
    select x.run_id, t.position, count(*)
    from (select s.run_id, s.model_id, s.probabilities from scores s
          union all
          select u.run_id, s.model_id, s.probabilities from run_reused_scores u
          join scores s on s.model_id = u.model_id and s.record_id = u.record_id) x
    join dashboard_model_label_thresholds t on t.model_id = x.model_id and t.position = any (p_positions)
    where x.probabilities[t.position + 1] > t.threshold or (t.inclusive and x.probabilities[t.position + 1] = t.threshold)
    group by 1, 2;
end
$fn$;

revoke execute on function dashboard_recount_labels(integer[]) from public;

-- As in 0020; the changed labels whose new thresholds are all on the grid are recounted from the bucket counts, the
-- others from the model's rows.
create or replace function threshold_set_activate(p_set uuid) returns integer[]
language plpgsql security definer set search_path from current as $fn$
declare
    model text;
    changed integer[];
    slow integer[];
    before_thresholds real[];
    before_inclusive boolean[];
begin
    select s.model_id into model from threshold_sets s where s.set_id = p_set;
    if not found then
        raise exception 'threshold set % does not exist', p_set using errcode = 'no_data_found';
    end if;

    perform pg_advisory_xact_lock(17017, 0);
    -- Exclusive: waits for this model's writers in flight and holds new ones back until this commits.
    perform pg_advisory_xact_lock(17017, dashboard_model_lock_key(model));

    select array_agg(t.threshold order by t.position), array_agg(t.inclusive order by t.position)
    into before_thresholds, before_inclusive
    from dashboard_model_label_thresholds t
    where t.model_id = model;

    update threshold_sets set active = false where model_id = model and active and set_id <> p_set;
    update threshold_sets set active = true, activated_at = now() where set_id = p_set and not active;

    select coalesce(array_agg(a.position order by a.position), '{}')
    into changed
    from dashboard_model_label_thresholds a
    join unnest(before_thresholds, before_inclusive) with ordinality as b (threshold, inclusive, ord) on b.ord = a.position + 1
    where a.model_id = model and (a.threshold, a.inclusive) is distinct from (b.threshold, b.inclusive);

    if cardinality(changed) = 0 then
        return changed;
    end if;

    select coalesce(array_agg(t.position order by t.position), '{}')
    into slow
    from dashboard_model_label_thresholds t
    where t.model_id = model and t.position = any (changed) and label_grid_index(t.threshold) is null;

    perform label_positives_from_buckets(array[model],
        array(select c from unnest(changed) c where c <> all (slow)));

    if cardinality(slow) > 0 then
        delete from run_label_positives p
        using runs r
        where r.run_id = p.run_id and r.model_id = model and p.position = any (slow);

        insert into run_label_positives (run_id, position, positives)
        select x.run_id, t.position, count(*)
        from (select s.run_id, s.probabilities from scores s where s.model_id = model
              union all
              select u.run_id, s.probabilities from run_reused_scores u
              join scores s on s.model_id = u.model_id and s.record_id = u.record_id
              where u.model_id = model) x
        join dashboard_model_label_thresholds t on t.model_id = model and t.position = any (slow)
        where x.probabilities[t.position + 1] > t.threshold or (t.inclusive and x.probabilities[t.position + 1] = t.threshold)
        group by 1, 2;
    end if;

    return changed;
end
$fn$;

revoke execute on function threshold_set_activate(uuid) from public;
revoke execute on function label_positives_from_buckets(text[], integer[]) from public;
revoke execute on function run_label_buckets_fold(uuid[]) from public;

-- The bucket counts of the rows stored before this migration: each run's own rows and those it reused.
insert into run_label_buckets (run_id, cells, counts)
select x.run_id, array_agg(x.cell), array_agg(x.n)
from (select y.run_id, (u.ord::integer - 1) * 2003 + label_grid_bucket(u.p) as cell, count(*) as n
      from (select s.run_id, s.probabilities from scores s
            union all
            select r.run_id, s.probabilities from run_reused_scores r
            join scores s on s.model_id = r.model_id and s.record_id = r.record_id) y
      cross join lateral unnest(y.probabilities) with ordinality as u (p, ord)
      where u.p is not null
      group by 1, 2) x
group by 1;

grant select on run_label_buckets to hubert_dashboard;
