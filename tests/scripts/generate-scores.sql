-- Fills a migrated database with a synthetic history for measuring the dashboard views (docs/queries.md):
-- :runs runs of :per_run scored records each (default 10 x 100,000 = 1,000,000 score rows), written in
-- batches of :batch rows by four simulated workers through the same triggers the product's writes go through.
-- The last run is still running (two thirds of its shards done, records written over the last 50 minutes);
-- the others completed on earlier days. 0.5 % of each run's records are quarantined with one of six reasons.
-- Probabilities are random with a per-label skew (label i is positive at 0.5 with probability 1 - 0.5^(1/k),
-- k = 1 + i % 9); embeddings hold 16 values instead of a real model's 768 to keep the database small.
--
-- Usage (on a scratch database, never a real one):
--   psql -h 127.0.0.1 -p 55432 -U hubert -d postgres -c 'create database dash_bench'
--   bash infra/local/migrate.sh "Host=127.0.0.1;Port=55432;Username=hubert;Database=dash_bench"   (the built hubert-ecg db migrate)
--   psql "host=127.0.0.1 port=55432 user=hubert dbname=dash_bench" -v ON_ERROR_STOP=1 -f tests/scripts/generate-scores.sql
--   (optional: -v runs=2 -v per_run=1000 -v batch=100 for a small one)
-- It must not run inside a transaction (psql -1): it commits after every batch.

\if :{?runs}
\else
\set runs 10
\endif
\if :{?per_run}
\else
\set per_run 100000
\endif
\if :{?batch}
\else
\set batch 1000
\endif

insert into models (model_id, name, source_hash, architecture, hidden_size, label_codes, untrained, preprocessing_profile)
select 'bench-model', 'synthetic benchmark model', 'bench', '{}'::jsonb, 16, array(select code from labels order by position), false, 'hubert-ecg'
on conflict (model_id) do nothing;

create temp table bench_settings as
select :runs::integer as runs, :per_run::integer as per_run, :batch::integer as batch, now() as t0;

do $gen$
declare
    cfg record;
    run_no integer;
    run uuid;
    live boolean;
    started timestamptz;
    span interval;
    shard_size constant integer := 100;
    shards integer;
    done_shards integer;
    offset_no integer;
    quarantined integer;
begin
    select * into cfg from bench_settings;
    for run_no in 1 .. cfg.runs loop
        run := md5('bench-run-' || run_no)::uuid;
        live := run_no = cfg.runs;
        -- Finished runs took 5 hours on day -(runs - run_no); the live one started 50 minutes ago.
        started := case when live then cfg.t0 - interval '50 minutes'
                        else cfg.t0 - make_interval(days => cfg.runs - run_no, hours => 5) end;
        span := case when live then interval '50 minutes' else interval '5 hours' end;
        shards := case when live then ceil(cfg.per_run * 1.5 / shard_size)::integer else ceil(cfg.per_run::numeric / shard_size)::integer end;
        done_shards := ceil(cfg.per_run::numeric / shard_size)::integer;
        quarantined := cfg.per_run / 200;

        insert into runs (run_id, name, input_container, input_prefix, model_id, model_path, preprocessing_profile, aggregation,
                          max_windows, batch_size, shard_size, max_attempts, lease_seconds, state, planning_complete,
                          shards_planned, records_planned, started_at, created_at, finished_at)
        values (run, 'nightly cohort ' || run_no, 'ecg', 'cohort/', 'bench-model', '/models/bench.onnx', 'hubert-ecg', 'mean',
                4, 32, shard_size, 3, 300, case when live then 'running' else 'completed' end, true,
                shards, shards * shard_size, started, started, case when live then null else started + span end)
        on conflict do nothing;

        insert into run_shards (run_id, shard_no, kind, blobs, records_planned, state, attempts, lease_owner, lease_deadline,
                                records_done, records_quarantined)
        select run, s, 'records', array['cohort/' || run_no || '/' || s || '.hea'], shard_size,
               case when s < done_shards then 'done' when s < done_shards + 8 then 'leased' else 'pending' end,
               case when s < done_shards + 8 then 1 else 0 end,
               case when s < done_shards + 8 then 'worker-' || (s % 4) end,
               case when s >= done_shards and s < done_shards + 8 then cfg.t0 + interval '5 minutes' end,
               case when s < done_shards then shard_size - (case when s % 20 = 0 then 10 else 0 end) else 0 end,
               case when s < done_shards and s % 20 = 0 then 10 else 0 end
        from generate_series(0, shards - 1) s
        on conflict do nothing;
        commit;

        offset_no := 0;
        while offset_no < cfg.per_run loop
            perform set_config('hubert.worker_id', 'worker-' || ((offset_no / cfg.batch) % 4), true);
            insert into scores (model_id, record_id, run_id, probabilities, embedding, windows_used, source_blob, source_etag, scored_at)
            select 'bench-model',
                   'r' || run_no || '-' || i,
                   run,
                   array(select ((0.001 + 0.999 * random()) ^ (1 + j % 9))::real from generate_series(0, 163) j where i >= 0),
                   array_fill(0.125::real, array[16]),
                   4,
                   'cohort/' || run_no || '/' || (i / shard_size) || '.hea',
                   '"0x' || to_hex(i) || '"',
                   started + span * (i::double precision / cfg.per_run)
            from generate_series(offset_no, least(offset_no + cfg.batch, cfg.per_run) - 1) i;
            commit;
            offset_no := offset_no + cfg.batch;
        end loop;

        perform set_config('hubert.worker_id', 'worker-0', true);
        insert into quarantine (run_id, record_id, shard_no, source_blob, reason, quarantined_at)
        select run, 'q' || run_no || '-' || i, (i * 200) / shard_size, 'cohort/' || run_no || '/q' || i || '.hea',
               (array['header: missing lead V4', 'signal: sampling rate 250 Hz below 500 Hz', 'signal: shorter than 5 s',
                      'header: unparseable gain', 'signal: flat line in all leads', 'blob: truncated file'])[1 + i % 6],
               started + span * (i::double precision / quarantined)
        from generate_series(0, quarantined - 1) i;

        update runs set records_done = cfg.per_run, records_quarantined = quarantined, shards_done = done_shards,
                        updated_at = cfg.t0
        where run_id = run;
        commit;
    end loop;
end
$gen$;

vacuum analyze scores;
vacuum analyze quarantine;
vacuum analyze run_shards;
vacuum analyze runs;
vacuum analyze run_progress_minutes;
vacuum analyze worker_progress_minutes;
vacuum analyze run_label_positives;

select count(*) as score_rows from scores;
