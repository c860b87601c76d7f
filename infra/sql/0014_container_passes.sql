-- Containers (HDF5 shards, tar and zip archives) that an incremental run may leave out whole, without downloading
-- them: one row per model and container blob, written by the worker that finished the container's shard, once
-- every record in it had a score or quarantine row or was left out as current, with the ETag of the version it
-- read. Until now planning left a container out when all of its stored scores carried its current ETag, which a
-- run cancelled (or failed) half way through the container also satisfies, so the rest of that container was
-- never scored by incremental runs. records_scored: the container's records that have a current score after the
-- pass (scored by it, or left out as current); an incremental run that leaves the container out counts them as
-- skipped. A container's quarantined records are not tried again until the container changes.
create table container_passes (
    model_id text not null references models (model_id) on delete cascade,
    source_blob text not null,
    source_etag text not null,
    run_id uuid not null,
    records_scored bigint not null check (records_scored >= 0),
    records_quarantined bigint not null check (records_quarantined >= 0),
    finished_at timestamptz not null default now(),
    primary key (model_id, source_blob)
);
