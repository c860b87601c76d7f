-- Model precision (issue 15): an exported model is fp32 or fp16 (weights and matrix products; its inputs and outputs
-- are fp32 either way). models.precision says which, so each score row's provenance (scores.model_id) carries it;
-- runs.model_precision copies it onto the run row when the run is created, so run status (and any dashboard query
-- over runs) can show it without a join. Rows from before this migration are fp32: no fp16 model could be exported then.

alter table models
    add column precision text not null default 'fp32' check (precision in ('fp32', 'fp16'));

alter table runs
    add column model_precision text not null default 'fp32' check (model_precision in ('fp32', 'fp16'));

-- A run's model precision is its model's, whatever the inserting client says. Runs as its owner (security definer,
-- with the migration's search_path), like the dashboard's triggers, so a role that inserts runs needs nothing more.
create function runs_model_precision() returns trigger
language plpgsql security definer set search_path from current as $$
begin
    select m.precision into new.model_precision from models m where m.model_id = new.model_id;
    new.model_precision := coalesce(new.model_precision, 'fp32');
    return new;
end;
$$;

create trigger runs_model_precision before insert or update of model_id on runs
    for each row execute function runs_model_precision();
