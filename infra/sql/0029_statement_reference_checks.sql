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

-- The result writer folds the bucket rows of the runs it writes itself, every few batches, in a transaction of its
-- own (ResultWriter.FoldBucketsAsync: the same rule as run_label_buckets_fold, the sums done in the writer), and says
-- so in its batches' transactions (hubert.writer_folds = 'on'): the insert trigger's fold of about one statement in
-- 16 (0025) is then skipped. Other writers (plain SQL) fold in the trigger as before.
alter function run_label_buckets_fold(uuid[]) rename to run_label_buckets_fold_rows;

create function run_label_buckets_fold(p_runs uuid[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    if coalesce(current_setting('hubert.writer_folds', true), '') <> 'on' then
        perform run_label_buckets_fold_rows(p_runs);
    end if;
end
$fn$;

revoke execute on function run_label_buckets_fold(uuid[]) from public;
