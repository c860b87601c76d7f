-- Issue 14 (docs/benchmarks.md, "Stored results at 10,000,000 rows"): dashboard_record_top_findings joined every
-- row's 164 probabilities to dashboard_model_label_thresholds (models x labels x threshold sets x global thresholds)
-- once per row, about 2 ms a row on the shared 2-core VM: "the latest 50 records of a run" took 112 ms at 1M rows and
-- the same at 10M (the cost is per row shown, not per row stored). Now the model's thresholds are read once per model
-- as arrays (a lateral subquery on the model id alone, which the planner caches across rows of one model) and each
-- row looks up its probability by position: the same columns, rows and order as before.
--
-- Same results: a label whose position lies beyond the row's probabilities gives a null probability, which is above
-- no threshold (the old join had no pair for it); ties keep the old order (probability descending, then position).
-- A view only: nothing is rewritten, existing rows are read as before.
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
    select array_agg(t.position order by t.position) as positions,
           array_agg(t.threshold order by t.position) as thresholds,
           array_agg(t.inclusive order by t.position) as inclusive,
           array_agg(t.code order by t.position) as codes,
           array_agg(t.name order by t.position) as names
    from dashboard_model_label_thresholds t
    where t.model_id = s.model_id
) m
cross join lateral (
    select count(*)::integer as findings,
           array_agg(x.code order by x.probability desc, x.position) as codes,
           array_agg(x.name order by x.probability desc, x.position) as names,
           array_agg(x.probability order by x.probability desc, x.position) as probabilities
    from (select l.position, l.code, l.name, s.probabilities[l.position + 1] as probability, l.threshold, l.inclusive
          from unnest(m.positions, m.thresholds, m.inclusive, m.codes, m.names) as l (position, threshold, inclusive, code, name)) x
    where x.probability > x.threshold or (x.inclusive and x.probability = x.threshold)
) f;
