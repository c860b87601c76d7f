-- Loads one live run of :rows score rows (default 10,000,000) into a migrated, empty scratch database, for the
-- figures of docs/benchmarks.md, "Stored results at 10,000,000 rows (issue 14)". The fastest correct way found:
-- the rows go in with one INSERT ... SELECT with the triggers off (session_replication_role = replica), and the
-- bookkeeping the triggers would have done (progress minutes, worker minutes, positives per label, threshold bucket
-- counts, the run's counters) is then written in bulk, and checked against direct counts over the rows by
-- tests/scripts/check-scale-scores.sql. Shards and quarantine go in through their own triggers.
--
-- The rows: a 64-hex model id (as `hubert-ecg models register` gives), record ids in shards of 1,000 records (995
-- scored, 5 quarantined) that 8 workers score 8 shards at a time, interleaved, at 2,500 rows/s up to now (the heap is
-- in scored order, as writes append it); 164 probabilities per row drawn from :pool distinct vectors (default 200,000,
-- each used :rows / :pool times), each label a logistic of a normal with its own offset (per-label prevalence at 0.5
-- from about 0.2 % to 50 %, a continuous spread over the threshold grid); the embedding fp16 packed
-- (Postgres:EmbeddingPrecision=fp16, 0027: 1 + 512 x 2 bytes; -v precision=fp32 for 1 + 512 x 4) from 1,000 distinct
-- random vectors.
--
-- Faster still with wal_level=minimal (and max_wal_senders=0): the table is truncated in the loading transaction, so
-- its rows and index entries skip the WAL.
--
-- Usage (a scratch database, never a real one; run as its owner, no psql -1: the script has its own transactions):
--   psql "host=... dbname=scale" -v ON_ERROR_STOP=1 [-v rows=10000000 -v pool=200000 -v precision=fp16|fp32] -f tests/scripts/load-scale-scores.sql
\if :{?rows}
\else
\set rows 10000000
\endif
\if :{?pool}
\else
\set pool 200000
\endif
\timing on

select count(*) = 0 as scores_empty from scores \gset
\if :scores_empty
\else
\echo 'scores is not empty: this script loads an empty scratch database only'
\quit
\endif

-- The model and its live run: started rows / 2,500 seconds ago, 1,000-record shards, 20 % of them still to do.
create temp table scale_settings as
select :rows::bigint as rows, :pool::integer as pool, 995 as per_shard, 1000 as shard_size, 2500.0::float8 as per_second,
       date_trunc('second', now()) as t_end,
       repeat(md5('scale-model'), 2) as model_id, md5('scale-run-10m')::uuid as run_id;

insert into models (model_id, name, source_hash, architecture, hidden_size, label_codes, untrained, preprocessing_profile)
select model_id, 'synthetic scale model', 'scale', '{}'::jsonb, 512, array(select code from labels order by position), false, 'hubert-ecg'
from scale_settings;

insert into runs (run_id, name, input_container, input_prefix, model_id, model_path, preprocessing_profile, aggregation, max_windows,
                  batch_size, shard_size, max_attempts, lease_seconds, state, planning_complete, shards_planned, records_planned,
                  started_at, created_at)
select run_id, 'scale cohort 10M', 'ecg', 'cohort/', model_id, '/models/scale.onnx', 'hubert-ecg', 'mean', 4, 32, shard_size, 3, 300,
       'running', true, ceil(rows * 1.25 / per_shard)::integer, ceil(rows * 1.25 / per_shard)::bigint * shard_size,
       t_end - make_interval(secs => rows / per_second), t_end - make_interval(secs => rows / per_second + 60)
from scale_settings;

-- Rows are scored 8 shards at a time (a block of 7,960 rows, see scale_rows below), so the done shards are the 8 of
-- every block, the last block's shards holding what is left. Shards (their counter triggers on): done ones scored
-- their rows and quarantined 5; the next 8 leased; the rest pending.
create temp table scale_shards as
select s as shard_no,
       case when s < 8 * (c.rows / (8 * c.per_shard)) then c.per_shard
            else greatest(0, (c.rows % (8 * c.per_shard) - s % 8 + 7) / 8) end as scored,
       least(c.rows - 1, (s / 8 + 1) * 8 * c.per_shard - 1) as last_g
from scale_settings c
cross join generate_series(0::bigint, 8 * ceil(c.rows / (8.0 * c.per_shard))::bigint - 1) s;

insert into run_shards (run_id, shard_no, kind, blobs, records_planned, state, attempts, lease_owner, lease_deadline, records_done,
                        records_quarantined, updated_at)
select c.run_id, s, 'records', array['cohort/' || s || '/'], c.shard_size,
       case when d.shard_no is not null then 'done' when s < d2.done + 8 then 'leased' else 'pending' end,
       case when s < d2.done + 8 then 1 else 0 end,
       case when s < d2.done + 8 then 'worker-' || (s % 8) end,
       case when d.shard_no is null and s < d2.done + 8 then c.t_end + interval '5 minutes' end,
       coalesce(d.scored, 0),
       case when d.shard_no is not null then c.shard_size - c.per_shard else 0 end,
       c.t_end
from scale_settings c
cross join (select count(*)::integer as done from scale_shards) d2
cross join generate_series(0, ceil(c.rows * 1.25 / c.per_shard)::integer - 1) s
left join scale_shards d on d.shard_no = s;

-- Quarantine (its trigger on): 5 records of every done shard (after its scored ones), at the end of the shard's block.
select set_config('hubert.worker_id', 'worker-0', false);
insert into quarantine (run_id, record_id, shard_no, source_blob, reason, quarantined_at)
select c.run_id, 'rec' || lpad((d.shard_no * c.shard_size + k)::text, 9, '0'), d.shard_no,
       'cohort/' || d.shard_no || '/rec' || lpad((d.shard_no * c.shard_size + k)::text, 9, '0') || '.hea',
       (array['header: missing lead V4', 'signal: sampling rate 250 Hz below 500 Hz', 'signal: shorter than 5 s',
              'header: unparseable gain', 'signal: flat line in all leads', 'blob: truncated file'])[1 + (d.shard_no + k) % 6],
       c.t_end - make_interval(secs => (c.rows - 1 - d.last_g) / c.per_second)
from scale_settings c
cross join scale_shards d
cross join generate_series(c.per_shard, c.shard_size - 1) k;

-- The probability vectors: label j has offset mu_j in [-7, -0.5] (41 steps, repeating) and p = 1 / (1 + exp(-(mu_j + 2.2 z))).
create unlogged table scale_pool_p as
select i, array(select (1 / (1 + exp(-(-7 + 6.5 * (j % 41) / 40.0
                                       + 2.2 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))))::real
                from generate_series(0, 163) j where i >= 0) as p
from generate_series(0, :pool - 1) i;
alter table scale_pool_p add primary key (i);

-- Embeddings as the result writer packs them (0027): a width byte (2: IEEE half, 4: IEEE single), then 512 values
-- little-endian; sign, exponent for |v| in [2^-7, 2), random mantissa.
\if :{?precision}
\else
\set precision fp16
\endif
create unlogged table scale_pool_e as
select i, decode(case when :'precision' = 'fp32' then '04' else '02' end
                 || string_agg(case when :'precision' = 'fp32'
                                    then lpad(to_hex(h32 & 255), 2, '0') || lpad(to_hex((h32 >> 8) & 255), 2, '0')
                                         || lpad(to_hex((h32 >> 16) & 255), 2, '0') || lpad(to_hex(h32 >> 24), 2, '0')
                                    else lpad(to_hex(h & 255), 2, '0') || lpad(to_hex(h >> 8), 2, '0') end, '' order by v), 'hex') as e
from generate_series(0, 999) i
cross join lateral (select v, ((random() * 2)::integer % 2 << 15) | ((8 + floor(random() * 8))::integer << 10) | floor(random() * 1024)::integer as h,
                           ((random() * 2)::bigint % 2 << 31) | ((120 + floor(random() * 8))::bigint << 23) | floor(random() * 8388608)::bigint as h32
                    from generate_series(0, 511) v where i >= 0) x
group by i;
alter table scale_pool_e add primary key (i);

-- Row g (scored order): shard block g / 7,960 holds 8 shards scored together, row g of the block goes to shard
-- 8 * block + g % 8 at position (g % 7,960) / 8; its probabilities are pool vector (g * 48271) % pool.
create function pg_temp.scale_rows() returns table (g bigint, shard bigint, rec bigint, scored_at timestamptz, pool_i integer)
language sql stable as $fn$
    select g, x.shard, x.shard * c.shard_size + (g % (8 * c.per_shard)) / 8,
           c.t_end - make_interval(secs => (c.rows - 1 - g) / c.per_second), ((g * 48271) % c.pool)::integer
    from scale_settings c
    cross join generate_series(0::bigint, c.rows - 1) g
    cross join lateral (select (g / (8 * c.per_shard)) * 8 + g % 8 as shard) x
$fn$;

begin;
truncate scores, run_reused_scores;
set local session_replication_role = replica;
set local work_mem = '512MB';
insert into scores (model_id, record_id, run_id, probabilities, embedding, embedding_packed, windows_used, source_blob, source_etag, scored_at)
select c.model_id, 'rec' || lpad(r.rec::text, 9, '0'), c.run_id, p.p, null, e.e, 2,
       'cohort/' || r.shard || '/rec' || lpad(r.rec::text, 9, '0') || '.hea', '"0x8DC' || upper(to_hex(r.rec * 7919 + 1000003)) || '"',
       r.scored_at
from scale_settings c
cross join pg_temp.scale_rows() r
join scale_pool_p p on p.i = r.pool_i
join scale_pool_e e on e.i = r.g % 1000;
commit;

-- The bookkeeping the scores triggers would have done, in bulk, from the same row formula (checked against the rows
-- by check-scale-scores.sql).
create temp table scale_mult as select pool_i, count(*)::bigint as n from pg_temp.scale_rows() group by 1;

insert into run_progress_minutes as m (run_id, minute, records_scored)
select c.run_id, date_trunc('minute', r.scored_at), count(*)
from scale_settings c cross join pg_temp.scale_rows() r
group by 1, 2
on conflict (run_id, minute) do update set records_scored = m.records_scored + excluded.records_scored;

insert into worker_progress_minutes as w (run_id, minute, worker, records_scored)
select c.run_id, date_trunc('minute', r.scored_at), 'worker-' || (r.shard % 8), count(*)
from scale_settings c cross join pg_temp.scale_rows() r
group by 1, 2, 3
on conflict (run_id, minute, worker) do update set records_scored = w.records_scored + excluded.records_scored;

insert into run_label_positives (run_id, position, positives)
select c.run_id, t.position, sum(m.n)
from scale_settings c
join dashboard_model_label_thresholds t on t.model_id = c.model_id
cross join scale_mult m
join scale_pool_p p on p.i = m.pool_i
where p.p[t.position + 1] > t.threshold or (t.inclusive and p.p[t.position + 1] = t.threshold)
group by 1, 2;

insert into run_label_buckets (run_id, cells, counts)
select c.run_id, array_agg(x.cell), array_agg(x.n)
from scale_settings c
cross join (select (u.ord::integer - 1) * 2003 + label_grid_bucket(u.p) as cell, sum(m.n)::bigint as n
            from scale_mult m
            join scale_pool_p p on p.i = m.pool_i
            cross join lateral unnest(p.p) with ordinality as u (p, ord)
            group by 1) x
group by c.run_id;

update runs r
set records_done = c.rows,
    records_quarantined = (select count(*) from quarantine q where q.run_id = c.run_id),
    shards_done = (select count(*) from run_shards s where s.run_id = c.run_id and s.state = 'done'),
    updated_at = c.t_end
from scale_settings c
where r.run_id = c.run_id;

-- The run's list of its highest rows per label (0033_run_label_top.sql), where the schema has it: the rows went in with
-- the triggers off, so the run has no list yet; run_label_top_rebuild makes it as the result writer keeps it (per
-- label the cut where the top 1,000 rows end in the bucket counts above, every row at or above it an entry).
select to_regproc('run_label_top_rebuild') is not null as has_top_list \gset
\if :has_top_list
select run_label_top_rebuild(run_id) from scale_settings;
\endif

drop table scale_pool_p, scale_pool_e;
vacuum analyze scores;
vacuum analyze run_shards;
vacuum analyze quarantine;
vacuum analyze run_progress_minutes;
vacuum analyze worker_progress_minutes;
vacuum analyze run_label_positives;
vacuum analyze run_label_buckets;
vacuum analyze runs;
\if :has_top_list
vacuum analyze run_label_top;
vacuum analyze run_label_top_cuts;
\endif
select count(*) as score_rows, pg_size_pretty(pg_total_relation_size('scores')) as scores_total from scores;
