-- Issue 14 (write rate): the result writer does the scores insert trigger's bookkeeping itself for the batches it
-- copies straight into scores, and the trigger is skipped for them.
--
-- For every statement that adds score rows, dashboard_scores_added (0010_dashboard.sql, 0018, 0020, 0025) counts the
-- rows per run and minute (overall and per writer), the label positives per run at the thresholds in force, and the
-- label bucket counts per run. Given a writer's own counts (hubert.label_positives, label_buckets_claim) it checked
-- them against the added rows before taking them, and each of those checks and counts was a query over the
-- statement's transition table, which Postgres parses and plans again on every call: about a quarter of the server's
-- time per row in `bench write` (docs/benchmarks.md, "Postgres write rate of score rows").
--
-- The result writer's direct copy now sets hubert.writer_bookkeeping = 'on' in its transaction. The trigger's WHEN
-- condition then skips the function, and the writer, in the same transaction after its copy (which adds exactly the
-- rows it sent or fails whole), adds the same counts with plain statements whose plans are cached: rows per run and
-- minute into run_progress_minutes and worker_progress_minutes (the writer named by dashboard_writer_name()), the
-- positives into run_label_positives after holding the models' threshold locks shared (17017, as the trigger does)
-- and reading the thresholds under them, and a delta row of bucket counts per run into run_label_buckets. Every other
-- insert (plain SQL, the writer's staging path, replacements) goes through the trigger as before; a session that
-- sets the flag without doing the bookkeeping leaves the dashboard's counters short, as one that inserted with
-- triggers disabled would.

drop trigger scores_dashboard_insert on scores;
create trigger scores_dashboard_insert after insert on scores
    referencing new table as added_rows for each statement
    when (current_setting('hubert.writer_bookkeeping', true) is distinct from 'on')
    execute function dashboard_scores_added();
