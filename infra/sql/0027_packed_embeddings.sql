-- Issue 14: the embedding of a score row as packed bytes instead of real[] (docs/benchmarks.md, "Embedding storage").
--
-- embedding_packed: one byte giving the width of a value (4: IEEE single, the model's output exactly; 2: IEEE half,
-- when a deployment sets Postgres:EmbeddingPrecision=fp16), then the values little-endian. A binary COPY sends it as
-- it is stored (a real[] travels as 8 bytes a value and is decoded one value at a time by array_recv), and half
-- precision halves the row. Kept in the row, uncompressed, like the real[] of 0018.
--
-- Rows written before keep their real[] `embedding`; new rows leave it null. Nothing is rewritten here (adding a
-- nullable column is a catalog change; the check is NOT VALID so no scan runs, and every existing row meets it).
-- score_embedding(embedding, embedding_packed) reads either form as real[] for SQL use.
alter table scores add column embedding_packed bytea;
alter table scores alter column embedding_packed set storage external;
alter table scores alter column embedding drop not null;
alter table scores add constraint scores_embedding_stored
    check (embedding is not null or (embedding_packed is not null and octet_length(embedding_packed) >= 1)) not valid;

-- A row's embedding as real[], whichever way it is stored. Exact for both widths (every half and single value is a
-- float8, and the result is cast to real only once). Meant for ad-hoc queries; the tool's readers decode in C#.
create function score_embedding(p_embedding real[], p_packed bytea) returns real[]
language plpgsql immutable parallel safe as $fn$
declare
    width integer;
    n integer;
    result real[];
    bits bigint;
    e integer;
    m bigint;
    sign float8;
    v float8;
begin
    if p_packed is null then
        return p_embedding;
    end if;
    width := get_byte(p_packed, 0);
    if width not in (2, 4) or (octet_length(p_packed) - 1) % width <> 0 then
        raise exception 'not a packed embedding: % bytes, width byte %', octet_length(p_packed), width;
    end if;
    n := (octet_length(p_packed) - 1) / width;
    if n = 0 then
        return '{}'::real[];
    end if;
    result := array_fill(0::real, array[n]);
    for i in 0 .. n - 1 loop
        if width = 4 then
            bits := get_byte(p_packed, 1 + 4 * i)::bigint | (get_byte(p_packed, 2 + 4 * i)::bigint << 8)
                  | (get_byte(p_packed, 3 + 4 * i)::bigint << 16) | (get_byte(p_packed, 4 + 4 * i)::bigint << 24);
            sign := case when (bits >> 31) = 1 then -1 else 1 end;
            e := ((bits >> 23) & 255)::integer;
            m := bits & 8388607;
            v := case when e = 0 then sign * m * 2::float8 ^ (-149)
                      when e = 255 then case when m = 0 then sign * 'Infinity'::float8 else 'NaN'::float8 end
                      else sign * (8388608 + m) * 2::float8 ^ (e - 150) end;
        else
            bits := get_byte(p_packed, 1 + 2 * i)::bigint | (get_byte(p_packed, 2 + 2 * i)::bigint << 8);
            sign := case when (bits >> 15) = 1 then -1 else 1 end;
            e := ((bits >> 10) & 31)::integer;
            m := bits & 1023;
            v := case when e = 0 then sign * m * 2::float8 ^ (-24)
                      when e = 31 then case when m = 0 then sign * 'Infinity'::float8 else 'NaN'::float8 end
                      else sign * (1024 + m) * 2::float8 ^ (e - 25) end;
        end if;
        result[i + 1] := v::real;
    end loop;
    return result;
end
$fn$;
