-- Issue 14 (write rate): the references of a score row to its run and its model checked once per statement instead
-- of once per row; and the result writer's statements no longer fold label bucket rows in the insert trigger (the
-- writer folds them itself, outside its batches' transactions).
--
-- The foreign keys scores.run_id -> runs and scores.model_id -> models ran two checks for every row written: each a
-- query that finds the referenced row and locks it (key share), about a sixth of the server's time per row in
-- `bench write` (docs/benchmarks.md, "Postgres write rate of score rows"). A batch of 512 rows names one run and one
-- model. The same rule now holds through triggers:
--
-- * Rows added to scores (insert, or an update that moves a row to another run or model): after the statement, the
--   distinct runs and models its rows name are locked key share, in key order, as the foreign keys locked them row by
--   row; a run or model that is not there (never was, or deleted by a transaction that committed meanwhile) fails
--   the statement with foreign_key_violation, naming it.
-- * A run or a model is deleted (or its key changed) only while no score row names it: a row trigger checks before
--   the delete, which has locked the row first, so it waits for the writers holding the key share lock and then
--   sees their rows.
--
-- What the foreign keys did not allow, these do not allow either; the error code is the same (23503).

alter table scores drop constraint scores_run_id_fkey;
alter table scores drop constraint scores_model_id_fkey;

create function scores_check_references() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    run_ids uuid[];
    model_ids text[];
    found_count integer;
    missing text;
begin
    select array_agg(distinct n.run_id order by n.run_id), array_agg(distinct n.model_id order by n.model_id)
    into run_ids, model_ids
    from added_rows n;
    if run_ids is null then
        return null;
    end if;

    select count(*) into found_count
    from (select 1 from runs r where r.run_id = any (run_ids) order by r.run_id for key share of r) locked;
    if found_count <> cardinality(run_ids) then
        select u::text into missing from unnest(run_ids) u where not exists (select 1 from runs r where r.run_id = u) limit 1;
        raise exception 'a score row names run %, which does not exist', coalesce(missing, '(deleted meanwhile)')
            using errcode = 'foreign_key_violation', table = 'scores', constraint = 'scores_run_reference';
    end if;

    select count(*) into found_count
    from (select 1 from models m where m.model_id = any (model_ids) order by m.model_id for key share of m) locked;
    if found_count <> cardinality(model_ids) then
        select u into missing from unnest(model_ids) u where not exists (select 1 from models m where m.model_id = u) limit 1;
        raise exception 'a score row names model %, which is not registered', coalesce(missing, '(deleted meanwhile)')
            using errcode = 'foreign_key_violation', table = 'scores', constraint = 'scores_model_reference';
    end if;

    return null;
end
$fn$;

-- Named to fire before the dashboard triggers (after triggers fire in name order), so a missing run is reported as such
-- rather than by the first summary table that names it.
create trigger scores_check_references_insert after insert on scores
    referencing new table as added_rows for each statement execute function scores_check_references();
create trigger scores_check_references_update after update on scores
    referencing new table as added_rows for each statement execute function scores_check_references();

-- A run or model named by score rows stays (delete, or a change of its key).
create function runs_keep_scored() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    if exists (select 1 from scores s where s.run_id = old.run_id) then
        raise exception 'run % still has score rows', old.run_id
            using errcode = 'foreign_key_violation', table = 'runs', constraint = 'scores_run_reference';
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end
$fn$;

create function models_keep_scored() returns trigger
language plpgsql security definer set search_path from current as $fn$
begin
    if exists (select 1 from scores s where s.model_id = old.model_id) then
        raise exception 'model % still has score rows', old.model_id
            using errcode = 'foreign_key_violation', table = 'models', constraint = 'scores_model_reference';
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end
$fn$;

create trigger runs_keep_scored_delete before delete on runs
    for each row execute function runs_keep_scored();
create trigger runs_keep_scored_key before update of run_id on runs
    for each row when (old.run_id is distinct from new.run_id) execute function runs_keep_scored();
create trigger models_keep_scored_delete before delete on models
    for each row execute function models_keep_scored();
create trigger models_keep_scored_key before update of model_id on models
    for each row when (old.model_id is distinct from new.model_id) execute function models_keep_scored();

-- scores: rows added. As in 0025, except that a statement whose bucket claims held no longer folds: the result writer
-- folds the runs it writes itself, every few batches, in a transaction of its own (ResultWriter.FoldBucketsAsync:
-- the same rule as run_label_buckets_fold, the sums done in the writer). Statements that counted their buckets here
-- (plain SQL, the staging path) fold as before, about one in 16.
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

    -- About one statement in 16 of those that counted their buckets here folds the bucket rows of the runs it touched.
    if not buckets_hold and random() < 0.0625 then
        perform run_label_buckets_fold(array(select distinct n.run_id from added_rows n));
    end if;

    return null;
end
$fn$;
