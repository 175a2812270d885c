-- Database roles by workload (least privilege down to the database).
--
-- The migration job's user owns the schema and runs this. It creates two
-- NOLOGIN group roles and grants them what the services' statements need:
--   catdog_reader: SELECT on every table (list-images);
--   catdog_writer: SELECT, INSERT, UPDATE on every table and the sequences
--                  (ingest-trigger and classify-image: no DELETE, which no
--                  statement of theirs uses, and no DDL, which only the owner has).
-- Default privileges give tables a later migration creates the same grants.
-- Then each workload's login role, if it exists, joins its group. In Google
-- Cloud those are the IAM database users Terraform creates, named after the
-- service accounts: list-images@PROJECT.iam, ingest-trigger@..., classify-image@...
--
-- Roles belong to the whole cluster, not one database: several databases on
-- one server (the test suite's) migrate at the same time, so creating a role
-- that another migration has just created is not an error. A user that may
-- not create roles (no CREATEROLE) skips the roles and their grants.
DO $roles$
DECLARE
    group_name text;
BEGIN
    FOREACH group_name IN ARRAY ARRAY['catdog_reader', 'catdog_writer'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = group_name) THEN
            IF NOT (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                RAISE NOTICE 'cannot create role %: % lacks CREATEROLE; workload roles skipped', group_name, current_user;
                RETURN;
            END IF;
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', group_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created by a concurrent migration of another database
            END;
        END IF;
    END LOOP;

    EXECUTE format('GRANT CONNECT ON DATABASE %I TO catdog_reader, catdog_writer', current_database());
    -- Before PostgreSQL 15 everyone may create tables in public; only the owner
    -- should. (A no-op warning when the schema belongs to someone else.)
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    GRANT USAGE ON SCHEMA public TO catdog_reader, catdog_writer;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO catdog_reader;
    GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO catdog_writer;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO catdog_writer;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO catdog_reader;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO catdog_writer;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO catdog_writer;

    -- The services' IAM database users, when they exist (Cloud SQL).
    FOR group_name IN
        SELECT format('GRANT catdog_reader TO %I', rolname) FROM pg_roles
        WHERE rolname LIKE 'list-images@%.iam'
        UNION ALL
        SELECT format('GRANT catdog_writer TO %I', rolname) FROM pg_roles
        WHERE rolname LIKE 'ingest-trigger@%.iam' OR rolname LIKE 'classify-image@%.iam'
    LOOP
        BEGIN
            EXECUTE group_name;
        EXCEPTION WHEN unique_violation THEN
            NULL; -- granted at the same moment by a migration of another database
        END;
    END LOOP;
END
$roles$;
