-- conveyor's database roles: who may do what in a conveyor database, in one place.
--
-- Each capability is a NOLOGIN role holding its grants; a service connects as a login role of
-- its own that is a member of the capability it needs, and of nothing else:
--
--   conveyor_bank_reader   reads the demo bank (schema bank: USAGE, SELECT on every table, now
--                          and later) and nothing of conveyor's own tables (requests,
--                          checkpoints, actions, sessions, cache...). The gatherer's SQL tools
--                          run as its member.
--   conveyor_bank_writer   performs actions through the bank's write path: EXECUTE on its
--                          functions (freeze_card, refund_transaction, cancel_transfer,
--                          order_replacement_card; migration 0006), which run as the schema's
--                          owner and check every change themselves, and no grant on any table.
--                          The executor, which performs the decisions' actions, runs as its member.
--
-- Everything else stays with the role that ran `conveyor migrate`, which owns the tables: the
-- orchestrator and the CLI connect as that one.
--
-- Run it with psql, after `conveyor migrate`, as a role that may create roles and owns the
-- schemas (or a superuser), once per database and again after an upgrade; it is idempotent:
--
--   psql -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -f deploy/sql/roles.sql -v gatherer_login=conveyor_gatherer
--
-- executor_login (optional, as gatherer_login) names the executor's login role: made a member of
-- conveyor_bank_writer only.
--
-- gatherer_login (optional) names the gatherer's login role: created when missing (LOGIN, no
-- password: give it one with `\password conveyor_gatherer`, or use another authentication in
-- pg_hba.conf), made a member of conveyor_bank_reader, and read-only by default. Then start the
-- gatherer with `--database-url postgresql://conveyor_gatherer:PASSWORD@HOST/DB` (or
-- CONVEYOR_DATABASE_URL in its own environment). deploy/local/pg roles runs this file for the
-- local stack and the tests.
--
-- Roles belong to the whole server, grants to one database: a second database on the same
-- server needs this file run in it too, and reuses the roles.

\set ON_ERROR_STOP on
-- psql variables do not reach inside a DO block; a custom setting carries the login's name.
\if :{?gatherer_login}
select set_config('conveyor.gatherer_login', :'gatherer_login', false) as gatherer_login_set \gset
\else
select set_config('conveyor.gatherer_login', '', false) as gatherer_login_set \gset
\endif
\if :{?executor_login}
select set_config('conveyor.executor_login', :'executor_login', false) as executor_login_set \gset
\else
select set_config('conveyor.executor_login', '', false) as executor_login_set \gset
\endif

-- A service's login role: created when missing, refused when it could do more than its capability
-- (a superuser, a role that owns a schema...: the walls would be pointless), made a member of
-- capability. For this session only (pg_temp).
create function pg_temp.conveyor_service_login(login text, service text, capability text) returns void
language plpgsql as $$
begin
    if not exists (select from pg_roles where rolname = login) then
        execute format('create role %I login', login);
    end if;
    if exists (select from pg_roles
               where rolname = login and (rolsuper or rolcreaterole or rolcreatedb or rolbypassrls)) then
        raise exception 'role % may do more than % allows (superuser, createrole, createdb or bypassrls): '
                        'give the % a login role of its own', login, capability, service;
    end if;
    if exists (select from pg_namespace where nspowner = (select oid from pg_roles where rolname = login)) then
        raise exception 'role % owns a schema of this database: give the % a login role of its own', login, service;
    end if;
    execute format('grant %I to %I', capability, login);
end
$$;

do $$
declare
    login text := current_setting('conveyor.gatherer_login');
    owner text;
begin
    if not exists (select from pg_namespace where nspname = 'bank') then
        raise exception 'schema bank is missing: run `conveyor migrate` on this database first';
    end if;
    if not exists (select from pg_roles where rolname = 'conveyor_bank_reader') then
        create role conveyor_bank_reader nologin;
    end if;
    comment on role conveyor_bank_reader is 'conveyor: reads the demo bank (schema bank), nothing else (deploy/sql/roles.sql)';

    grant usage on schema bank to conveyor_bank_reader;
    grant select on all tables in schema bank to conveyor_bank_reader;
    -- every customer's actions and their outcomes are the executor's, not a tool's to read
    revoke select on bank.applied_actions from conveyor_bank_reader;
    -- tables a later migration adds to the bank, created by the schema's owner
    select nspowner::regrole::text into owner from pg_namespace where nspname = 'bank';
    execute format('alter default privileges for role %s in schema bank grant select on tables to conveyor_bank_reader',
                   owner);

    if login <> '' then
        perform pg_temp.conveyor_service_login(login, 'gatherer', 'conveyor_bank_reader');
        -- a second wall: even a session opened by hand is read-only
        execute format('alter role %I set default_transaction_read_only = on', login);
    end if;
end
$$;

do $$
declare
    login text := current_setting('conveyor.executor_login');
begin
    if not exists (select from pg_proc where proname = 'freeze_card'
                                         and pronamespace = (select oid from pg_namespace where nspname = 'bank')) then
        raise exception 'the bank''s write path is missing: run `conveyor migrate` on this database first';
    end if;
    if not exists (select from pg_roles where rolname = 'conveyor_bank_writer') then
        create role conveyor_bank_writer nologin;
    end if;
    comment on role conveyor_bank_writer is 'conveyor: performs actions through the bank''s write path, nothing else (deploy/sql/roles.sql)';
    -- the write path's functions run as the schema's owner and check every change themselves:
    -- the role needs no grant on any table
    grant usage on schema bank to conveyor_bank_writer;
    grant execute on function bank.freeze_card(text, text, text), bank.refund_transaction(text, text, text, numeric),
        bank.cancel_transfer(text, text, text), bank.order_replacement_card(text, text, text) to conveyor_bank_writer;

    if login <> '' then
        perform pg_temp.conveyor_service_login(login, 'executor', 'conveyor_bank_writer');
    end if;
end
$$;
