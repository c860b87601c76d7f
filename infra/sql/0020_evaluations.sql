-- Evaluations and threshold sets (issue 17).
--
-- evaluations / evaluation_labels: what `hubert-ecg evaluate` computed, one row per evaluation (which scores, which
-- label file by SHA-256, how the two matched) and one per label.
--
-- threshold_sets / threshold_set_labels: named, versioned per-label thresholds for a model (`hubert-ecg thresholds
-- fit`); at most one set is active per model. A record is positive for a label of a set when its probability is at or
-- above the set's threshold (as the evaluation's metrics count it). Labels the active set has no threshold for (its
-- rule could not be met), and models without an active set, keep the global thresholds of 0010_dashboard.sql
-- (label_thresholds, else 0.5; strictly above).
--
-- The dashboard's prevalence and findings views and the run_label_positives summary now use each model's effective
-- thresholds (dashboard_model_label_thresholds). Activating a set recounts run_label_positives only for that model's
-- runs and only for the labels whose effective threshold changed, in one pass over that model's scores, and holds
-- back only that model's writers meanwhile (a per-model advisory lock that the scores triggers take shared), where a
-- change of label_thresholds still locks every writer out while it recounts every model.

create table evaluations (
    evaluation_id uuid primary key,
    -- The model of the scores, when known (a run's, or the model_id column of an export file).
    model_id text references models (model_id),
    run_id uuid references runs (run_id) on delete set null,
    -- 'run <id>' or the scores file's name.
    scores_source text not null,
    labels_file text not null,
    labels_sha256 text not null check (labels_sha256 ~ '^[0-9a-f]{64}$'),
    label_layout text not null check (label_layout in ('long', 'wide')),
    -- Records on both sides (the cohort), scored records without diagnoses, labelled records without a score.
    cohort_size integer not null check (cohort_size > 0),
    scores_only integer not null check (scores_only >= 0),
    labels_only integer not null check (labels_only >= 0),
    bootstrap integer not null default 0 check (bootstrap >= 0),
    bootstrap_seed bigint,
    created_at timestamptz not null default now()
);

create index evaluations_model on evaluations (model_id, created_at);
create index evaluations_run on evaluations (run_id) where run_id is not null;

-- One label of an evaluation; a null metric is undefined (no positive, no negative, or an empty denominator).
create table evaluation_labels (
    evaluation_id uuid not null references evaluations (evaluation_id) on delete cascade,
    -- The label's index among the scores' label columns (the model's label order for a run or an export).
    position integer not null check (position >= 0),
    label_code text not null,
    positives bigint not null check (positives >= 0),
    negatives bigint not null check (negatives >= 0),
    auroc double precision,
    auprc double precision,
    sensitivity_at_05 double precision,
    specificity_at_05 double precision,
    ppv_at_05 double precision,
    npv_at_05 double precision,
    f1_at_05 double precision,
    youden_threshold real,
    youden_sensitivity double precision,
    youden_specificity double precision,
    auroc_lo double precision,
    auroc_hi double precision,
    auprc_lo double precision,
    auprc_hi double precision,
    primary key (evaluation_id, position)
);

create table threshold_sets (
    set_id uuid primary key,
    model_id text not null references models (model_id),
    name text not null check (length(name) between 1 and 200),
    version integer not null check (version > 0),
    -- youden, f1, sensitivity=X or ppv=X.
    rule text not null,
    scores_source text not null,
    labels_file text not null,
    labels_sha256 text not null check (labels_sha256 ~ '^[0-9a-f]{64}$'),
    cohort_size integer not null check (cohort_size > 0),
    active boolean not null default false,
    created_at timestamptz not null default now(),
    activated_at timestamptz,
    unique (model_id, name, version)
);

create unique index threshold_sets_one_active on threshold_sets (model_id) where active;

-- A label of a set; threshold null when the set's rule could not be met for it (the label keeps the global one).
create table threshold_set_labels (
    set_id uuid not null references threshold_sets (set_id) on delete cascade,
    position integer not null references labels (position),
    threshold real check (threshold >= 0 and threshold <= 1),
    primary key (set_id, position)
);

-- Every model's effective threshold per label: its active set's where it has one (inclusive: positive at or above),
-- else label_thresholds, else 0.5 (strictly above).
create view dashboard_model_label_thresholds as
select mo.model_id,
       l.position,
       l.code,
       l.name,
       l.label_group,
       coalesce(sl.threshold, t.threshold, 0.5::real) as threshold,
       sl.threshold is not null as inclusive,
       sl.threshold is null and t.position is null as is_default,
       case when sl.threshold is not null then s.set_id end as set_id,
       case when sl.threshold is not null then s.name end as set_name,
       case when sl.threshold is not null then s.version end as set_version
from models mo
cross join labels l
left join threshold_sets s on s.model_id = mo.model_id and s.active
left join threshold_set_labels sl on sl.set_id = s.set_id and sl.position = l.position
left join label_thresholds t on t.position = l.position;

-- The advisory lock (two-int key space, class 17017) that keeps run_label_positives exact per model: the scores
-- triggers hold it shared for the models they count, until their transaction ends; activating a threshold set holds it
-- exclusively while it recounts. Key (17017, 0) serialises threshold changes with each other.
create function dashboard_model_lock_key(p_model text) returns integer
language sql immutable as $fn$
    select case when hashtext(p_model) = 0 then 1 else hashtext(p_model) end
$fn$;

-- scores: rows added. As in 0018 (a writer's claimed label counts taken when they hold), plus: per model in the batch
-- (almost always one), its effective thresholds. A claim counts with the global thresholds, strictly above: it holds
-- only for a batch of one model without an active threshold set, whose thresholds are then exactly the claim's.
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

    if claim_text is not null then
        -- A claim serves one statement, whether it holds or not.
        perform set_config('hubert.label_positives', '', true);
        claim := claim_text::jsonb;
    end if;

    select count(distinct n.model_id) into models from added_rows n;
    for model in select distinct n.model_id from added_rows n order by 1 loop
        -- Shared: waits only while an activation for this model recounts; read the thresholds after it.
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

    return null;
end
$fn$;

-- run_reused_scores (0016): a run's reused rows count for it against its model's effective thresholds.
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

-- scores: rows removed (delete, or the old side of an update).
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

-- A change of label_thresholds: as in 0010 (every writer waits on the share lock on scores), counting each model's
-- scores against its effective thresholds.
create or replace function dashboard_recount_labels(p_positions integer[]) returns void
language plpgsql security definer set search_path from current as $fn$
begin
    perform pg_advisory_xact_lock(17017, 0);
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

-- Makes a threshold set its model's active one (the model's previous active set stops being active) and recounts
-- run_label_positives for the model's runs and the labels whose effective threshold changed: one pass over the model's
-- scores (by the scores primary key's model prefix), other models' writers untouched. Returns the positions recounted.
create function threshold_set_activate(p_set uuid) returns integer[]
language plpgsql security definer set search_path from current as $fn$
declare
    model text;
    changed integer[];
    before_thresholds real[];
    before_inclusive boolean[];
begin
    select s.model_id into model from threshold_sets s where s.set_id = p_set;
    if not found then
        raise exception 'threshold set % does not exist', p_set using errcode = 'no_data_found';
    end if;

    perform pg_advisory_xact_lock(17017, 0);
    -- Exclusive: waits for this model's writers in flight (their counts then get recounted here) and holds new ones
    -- back until this commits (they then read the new thresholds).
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

    if cardinality(changed) > 0 then
        delete from run_label_positives p
        using runs r
        where r.run_id = p.run_id and r.model_id = model and p.position = any (changed);

        -- The rows each run wrote and those it reused (0016_run_reused_scores.sql).
        insert into run_label_positives (run_id, position, positives)
        select x.run_id, t.position, count(*)
        from (select s.run_id, s.probabilities from scores s where s.model_id = model
              union all
              select u.run_id, s.probabilities from run_reused_scores u
              join scores s on s.model_id = u.model_id and s.record_id = u.record_id
              where u.model_id = model) x
        join dashboard_model_label_thresholds t on t.model_id = model and t.position = any (changed)
        where x.probabilities[t.position + 1] > t.threshold or (t.inclusive and x.probabilities[t.position + 1] = t.threshold)
        group by 1, 2;
    end if;

    return changed;
end
$fn$;

-- Label prevalence per run, against the thresholds of the run's model (its active set). Columns as in 0010, then
-- threshold_inclusive (true: positive at or above the threshold, a set's; false: strictly above) and the set.
create or replace view dashboard_label_prevalence as
select r.run_id,
       r.name as run_name,
       r.model_id,
       t.position,
       t.code,
       t.name,
       t.label_group,
       t.threshold,
       t.is_default as threshold_is_default,
       n.records_scored,
       coalesce(p.positives, 0) as records_positive,
       case when n.records_scored > 0 then coalesce(p.positives, 0)::double precision / n.records_scored end as prevalence,
       t.inclusive as threshold_inclusive,
       t.set_id as threshold_set_id,
       t.set_name as threshold_set_name,
       t.set_version as threshold_set_version
from runs r
join models mo on mo.model_id = r.model_id
cross join lateral (
    select coalesce(sum(m.records_scored), 0)::bigint as records_scored from run_progress_minutes m where m.run_id = r.run_id
) n
join dashboard_model_label_thresholds t on t.model_id = r.model_id and t.position < cardinality(mo.label_codes)
left join run_label_positives p on p.run_id = r.run_id and p.position = t.position;

-- Per-record findings against the thresholds of the record's model.
create or replace view dashboard_record_findings as
select s.model_id,
       s.record_id,
       s.run_id,
       f.rank,
       f.position,
       f.code,
       f.name,
       f.probability,
       f.threshold
from scores s
cross join lateral (
    select (row_number() over (order by u.probability desc, u.ord))::integer as rank,
           t.position, t.code, t.name, u.probability, t.threshold
    from unnest(s.probabilities) with ordinality as u (probability, ord)
    join dashboard_model_label_thresholds t on t.model_id = s.model_id and t.position = u.ord - 1
    where u.probability > t.threshold or (t.inclusive and u.probability = t.threshold)
) f;

create or replace view dashboard_record_top_findings as
select s.model_id,
       s.record_id,
       s.run_id,
       s.scored_at,
       coalesce(f.findings, 0) as findings,
       coalesce(f.codes, '{}') as codes,
       coalesce(f.names, '{}') as names,
       coalesce(f.probabilities, '{}') as probabilities
from scores s
cross join lateral (
    select count(*)::integer as findings,
           array_agg(t.code order by u.probability desc, u.ord) as codes,
           array_agg(t.name order by u.probability desc, u.ord) as names,
           array_agg(u.probability order by u.probability desc, u.ord) as probabilities
    from unnest(s.probabilities) with ordinality as u (probability, ord)
    join dashboard_model_label_thresholds t on t.model_id = s.model_id and t.position = u.ord - 1
    where u.probability > t.threshold or (t.inclusive and u.probability = t.threshold)
) f;

-- Only the owner (and the tools that manage thresholds as the owner) may activate: it holds a model's writers back.
revoke execute on function threshold_set_activate(uuid) from public;

grant select on dashboard_model_label_thresholds, evaluations, evaluation_labels, threshold_sets, threshold_set_labels
    to hubert_dashboard;
