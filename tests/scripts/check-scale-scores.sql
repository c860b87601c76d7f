-- Checks what load-scale-scores.sql wrote in bulk against direct counts over the rows: per label positives
-- (run_label_positives and dashboard_label_prevalence), the threshold bucket counts (every label's buckets sum to the
-- run's rows; four labels' buckets cell by cell from the rows; the positives rebuilt from the buckets, as a threshold
-- change does, equal the direct count for all 164 labels), progress minutes, worker minutes, and the run's counters
-- (dashboard_run_progress), and the run's top-K list of 0030 where the schema has it. Prints one line per check and fails (ON_ERROR_STOP) on the first mismatch.
-- Usage: psql "host=... dbname=scale" -v ON_ERROR_STOP=1 -f tests/scripts/check-scale-scores.sql
\timing on
set max_parallel_workers_per_gather = 2;
select run_id as run, model_id as model from runs order by created_at desc limit 1 \gset

-- Positives per label from the rows: one pass, one filtered count per label at its effective threshold.
select format('select array[%s] as direct from scores where run_id = %L',
              string_agg(format('count(*) filter (where probabilities[%s] > %L::real%s)', t.position + 1, t.threshold,
                                case when t.inclusive then format(' or probabilities[%s] = %L::real', t.position + 1, t.threshold) else '' end),
                         ', ' order by t.position),
              :'run') as direct_sql
from dashboard_model_label_thresholds t where t.model_id = :'model' \gset
create temp table direct_positives as select (:direct_sql) as direct;

create temp table checks (name text, ok boolean);
insert into checks
select 'run_label_positives = direct count, 164 labels',
       (select direct from direct_positives)
         = array(select coalesce(p.positives, 0) from labels l
                 left join run_label_positives p on p.run_id = :'run' and p.position = l.position order by l.position);
insert into checks
select 'dashboard_label_prevalence = direct count, 164 labels',
       (select direct from direct_positives)
         = array(select records_positive from dashboard_label_prevalence where run_id = :'run' order by position)
   and (select bool_and(records_scored = (select count(*) from scores where run_id = :'run'))
        from dashboard_label_prevalence where run_id = :'run');

-- Buckets: each label's cells sum to the rows.
insert into checks
select 'bucket counts sum to the rows, 164 labels',
       (select count(*) = 164 and bool_and(n = (select count(*) from scores where run_id = :'run'))
        from (select u.cell / 2003 as position, sum(u.n) as n
              from run_label_buckets b cross join lateral unnest(b.cells, b.counts) u (cell, n)
              where b.run_id = :'run' and b.claim_xid is null group by 1) x);
-- Four labels cell by cell from the rows.
insert into checks
select 'bucket cells = direct count, labels 0, 40, 81, 163',
       not exists (
           select 1
           from (select k.position * 2003 + label_grid_bucket(k.p) as cell, count(*)::bigint as n
                 from scores s
                 cross join lateral unnest(array[0, 40, 81, 163],
                                           array[s.probabilities[1], s.probabilities[41], s.probabilities[82], s.probabilities[164]])
                      as k (position, p)
                 where s.run_id = :'run'
                 group by 1) d
           full join (select u.cell, sum(u.n)::bigint as n
                      from run_label_buckets b cross join lateral unnest(b.cells, b.counts) u (cell, n)
                      where b.run_id = :'run' and b.claim_xid is null and u.cell / 2003 in (0, 40, 81, 163)
                      group by 1 having sum(u.n) <> 0) c using (cell)
           where d.n is distinct from c.n);
-- The positives a threshold change rebuilds from the buckets (rolled back) equal the direct count.
begin;
select label_positives_from_buckets(array[:'model'], array(select position from labels order by position));
select (select direct from direct_positives)
         = array(select coalesce(p.positives, 0) from labels l
                 left join run_label_positives p on p.run_id = :'run' and p.position = l.position order by l.position) as rebuilt_ok \gset
rollback;
insert into checks values ('positives rebuilt from buckets = direct count, 164 labels', :'rebuilt_ok');

-- Progress: minutes from the rows; the workers' minutes add up to them; the run's counters.
insert into checks
select 'run_progress_minutes = direct count per minute',
       not exists (
           select 1
           from (select date_trunc('minute', scored_at) as minute, count(*) as n from scores where run_id = :'run' group by 1) d
           full join (select minute, records_scored as n from run_progress_minutes where run_id = :'run' and records_scored <> 0) m using (minute)
           where d.n is distinct from m.n);
insert into checks
select 'worker_progress_minutes add up to run_progress_minutes',
       not exists (
           select 1
           from (select minute, sum(records_scored) as n from worker_progress_minutes where run_id = :'run' group by 1 having sum(records_scored) <> 0) w
           full join (select minute, records_scored as n from run_progress_minutes where run_id = :'run' and records_scored <> 0) m using (minute)
           where w.n is distinct from m.n);
insert into checks
select 'dashboard_run_progress records_done and quarantined = direct counts',
       (select records_done = (select count(*) from scores where run_id = :'run')
           and records_quarantined = (select count(*) from quarantine where run_id = :'run')
           and shards_done = (select count(*) from run_shards where run_id = :'run' and state = 'done')
        from dashboard_run_progress where run_id = :'run');
insert into checks
select 'shard records_done sum = rows',
       (select sum(records_done) from run_shards where run_id = :'run') = (select count(*) from scores where run_id = :'run');

-- The run's list of its highest rows per label (0033_run_label_top.sql), when the schema has it: complete, each cut the
-- highest grid threshold with at least 1,000 of the run's rows at or above it (counted from the rows: one pass, two
-- filtered counts per label), and the entries exactly the (label, probability, record) of the rows at or above it.
select to_regclass('run_label_top') is not null as has_top_list \gset
\if :has_top_list
select format('select array[%s] as at_cut, array[%s] as at_next from scores where run_id = %L',
              string_agg(format('count(*) filter (where probabilities[%s] >= %L::real)', l.i + 1, c.cut), ', ' order by l.i),
              string_agg(format('count(*) filter (where probabilities[%s] >= %L::real)', l.i + 1,
                                case when c.cut >= 1 then 'Infinity' else ((round(c.cut::float8 * 1000) + 1) / 1000)::real::text end),
                         ', ' order by l.i),
              :'run') as top_sql
from generate_series(0, 163) l (i)
cross join lateral (select coalesce(k.cuts[l.i + 1], '-Infinity'::real) as cut from run_label_top_cuts k where k.run_id = :'run') c \gset
create temp table direct_top as :top_sql;
insert into checks
select 'run_label_top_cuts: complete, 164 cuts on the grid', state = 'complete' and cardinality(cuts) = 164
       and not exists (select 1 from unnest(cuts) c where c is null or label_grid_index(c) is null)
from run_label_top_cuts where run_id = :'run';
insert into checks
select 'top-list cut = highest grid threshold with >= 1,000 rows at or above, 164 labels',
       (select bool_and(a >= 1000 and b < 1000) from direct_top cross join lateral unnest(at_cut, at_next) x (a, b));
insert into checks
select 'top-list entries per label = direct count at or above the cut, 164 labels',
       (select at_cut from direct_top)
         = array(select coalesce(e.n, 0) from generate_series(0, 163) l (i)
                 left join (select position, count(*) as n from run_label_top where run_id = :'run' group by 1) e on e.position = l.i
                 order by l.i);
insert into checks
select 'every top-list entry is its row''s probability, at or above the cut',
       not exists (select 1 from run_label_top e
                   join run_label_top_cuts k on k.run_id = e.run_id
                   left join scores s on s.model_id = :'model' and s.record_id = e.record_id and s.run_id = e.run_id
                   where e.run_id = :'run'
                     and (s.record_id is null or s.probabilities[e.position + 1] <> e.probability or e.probability < k.cuts[e.position + 1]))
   and not exists (select 1 from run_label_top_batches where run_id = :'run');
\endif

select name, ok from checks;
select bool_and(ok) as all_ok from checks \gset
\if :all_ok
\echo 'all checks passed'
\else
\echo 'A CHECK FAILED'
select 1 / 0 as a_check_failed;
\endif
