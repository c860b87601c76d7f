-- Manifest entries naming a record that the run has already read from its manifest (the same path listed twice,
-- possibly far apart, or another file of a record read from an earlier chunk) are not planned again: each record
-- is planned, scored and counted once. runs.manifest_duplicates counts the entries left out. run_manifest_keys
-- holds the records (and container blobs) read so far, keyed 'r:' || path without extension or 'c:' || blob name;
-- it is written in the transaction that stores the planning step, and emptied when planning is complete.
alter table runs add column if not exists manifest_duplicates bigint not null default 0;

create table if not exists run_manifest_keys (
    run_id uuid not null references runs (run_id) on delete cascade,
    record_key text not null,
    primary key (run_id, record_key)
);
