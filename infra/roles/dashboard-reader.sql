-- A login that can read what the dashboard and BI tools read and can write nothing: a member of the read-only
-- hubert_dashboard role (created by infra/sql/0010_dashboard.sql, which grants it select on the dashboard views, the
-- scoring and summary tables, and on every table later migrations create), with read-only sessions by default too.
--
-- Run it with psql as the database's owner (the role that runs the migrations, which has CREATEROLE):
--
--   with a password:
--     psql "host=HOST dbname=hubert user=hubert sslmode=verify-full" -v role=grafana -v password='...' \
--          -f infra/roles/dashboard-reader.sql
--   an Entra ID principal on Azure Database for PostgreSQL (connected as an Entra ID administrator; the role name is
--   the managed identity's or group's display name, signing in with its tokens):
--     psql "host=HOST.postgres.database.azure.com dbname=postgres user=ADMIN sslmode=verify-full" \
--          -v role=hubert-dashboard-identity -v entra=1 -f infra/roles/dashboard-reader.sql
--   (then connect to the hubert database and run it again without -v entra=1 and without -v password, which only
--   grants: principals are created in the postgres database, grants are made in each database.)
\set ON_ERROR_STOP on

\if :{?role}
\else
do $$ begin raise exception 'set the role to create: psql ... -v role=NAME [-v password=SECRET | -v entra=1] -f infra/roles/dashboard-reader.sql'; end $$;
\endif

\if :{?entra}
select * from pgaadauth_create_principal(:'role', false, false);
\elif :{?password}
create role :"role" login password :'password' in role hubert_dashboard;
\else
-- The role exists (an Entra ID principal created earlier): grant it the read-only role in this database's cluster.
grant hubert_dashboard to :"role";
\endif

-- Sessions of this role start read-only as well: a write fails even where a grant would allow it.
alter role :"role" set default_transaction_read_only = on;
