-- A run's input may be a manifest blob (one record path per line, relative to the input container) instead of a
-- prefix. For such a run, runs.planning_token is the byte offset (and ETag) up to which the manifest was read.
-- Written so that it also applies to a database migrated to 0010 before this file existed.
alter table runs add column if not exists input_manifest text;

do $do$
begin
    if not exists (select 1 from pg_constraint where conname = 'runs_input_manifest_not_empty' and conrelid = 'runs'::regclass) then
        alter table runs add constraint runs_input_manifest_not_empty check (input_manifest is null or input_manifest <> '');
    end if;
end
$do$;
