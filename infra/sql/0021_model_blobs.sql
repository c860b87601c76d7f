-- Models as content-addressed blobs (issue 16): `hubert-ecg model register FILE.onnx` uploads a model to the models
-- container as <model id>/<sha256>.onnx and records here where it is and what its file hashes to. The model id (the
-- hash the exporter computes over the model before it adds the id to the metadata) is not the file's hash, so the
-- file's SHA-256 is kept beside it; silos check every file they load against it (the blob name carries it too).
-- Models registered before (by path) keep their rows without a blob; their runs keep reading runs.model_path.

alter table models
    add column blob_container text,
    add column blob_name text,
    add column file_sha256 text,
    add column file_bytes bigint;

alter table models add constraint models_blob_complete check (
    (blob_container is null and blob_name is null and file_sha256 is null and file_bytes is null)
    or (blob_container is not null and blob_name is not null and file_sha256 ~ '^[0-9a-f]{64}$' and file_bytes > 0
        and blob_name = model_id || '/' || file_sha256 || '.onnx'));

-- `--model NAME` looks models up by name (several may share one).
create index models_name on models (name);

comment on column runs.model_path is
    'Where silos get the run''s model: blob:<container>/<model id>/<sha256>.onnx for a model kept in blob storage '
    '(downloaded, checked against the SHA-256 and cached by each silo), or a file path every silo reads (runs stored before 0021).';
comment on column schedules.model_path is 'The model location its runs get (see runs.model_path).';
