-- Faster score writes (issue 14): about 2.2 times the rows per second of bench write, same guarantees
-- (docs/benchmarks.md, "Postgres write rate of score rows").
--
-- 1. The 2 KB embedding array no longer goes through pglz before it moves out of line: random floats do not
--    compress, so the attempt only cost time. Storage external keeps it out of line (TOAST) uncompressed. Rows
--    written before keep their stored form; both read back the same.
alter table scores alter column embedding set storage external;

-- 1b. And it stays in the row: a row (about 2.9 KB with a 512-float embedding, 4.6 KB with 960) is not toasted
--     below 8160 bytes, so a write is one heap tuple instead of a heap tuple plus two TOAST chunks and their index
--     entries (about a quarter of the server's time per row). Rows take about 10% more space in all (two rows per
--     8 KB page instead of nine narrow rows plus TOAST), and a scan that reads no embedding (the threshold recount,
--     an export without embeddings) now reads the embeddings' pages too. Rows written before stay toasted.
alter table scores set (toast_tuple_target = 8160);

-- 2. A writer may count a batch's label positives itself and hand the counts to the insert trigger, in the
--    transaction-local setting hubert.label_positives (JSON):
--      {"positions": [0, 1, ...], "thresholds": [0.5, ...],
--       "runs": [{"run": "<uuid>", "rows": 512, "positives": [12, 0, ...]}, ...]}
--    positives[i] counts the rows whose probabilities[positions[i] + 1] > thresholds[i] (a NaN probability is above
--    every threshold, as in Postgres; a missing one is not). The trigger takes the counts only when the positions
--    and thresholds are exactly those in force and the statement added exactly the claimed number of rows per run;
--    otherwise it counts from the rows as before. Either way it clears the setting, so the counts serve one
--    statement. Counting 164 labels over a batch in SQL was the largest single cost of a write (about half of
--    the insert's time).
create or replace function dashboard_scores_added() returns trigger
language plpgsql security definer set search_path from current as $fn$
declare
    writer text := dashboard_writer_name();
    -- The thresholds as two small arrays: comparing probabilities[position + 1] against them is about three
    -- times faster than unnesting every probability array and joining the thresholds.
    positions integer[] := array(select position from dashboard_label_thresholds order by position);
    thresholds real[] := array(select threshold from dashboard_label_thresholds order by position);
    claim_text text := nullif(current_setting('hubert.label_positives', true), '');
    claim jsonb;
    claim_holds boolean := false;
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
        perform set_config('hubert.label_positives', '', true);
        claim := claim_text::jsonb;
        claim_holds :=
            array(select e::integer from jsonb_array_elements_text(claim -> 'positions') e) = positions
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
    end if;

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
        from unnest(positions, thresholds) as t (position, threshold)
        cross join added_rows n
        where n.probabilities[t.position + 1] > t.threshold
        group by 1, 2
        order by 1, 2
        on conflict (run_id, position) do update set positives = p.positives + excluded.positives;
    end if;

    return null;
end
$fn$;
