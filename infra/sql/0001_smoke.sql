-- Foundation: a table the smoke job writes to, proving the services talk.
create table smoke_checks (
    id bigserial primary key,
    blob_name text not null,
    blob_sha256 text not null,
    checked_at timestamptz not null default now()
);
