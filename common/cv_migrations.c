/* The SQL migrations compiled into the binaries, and their runner. */
#include "cv_migrations.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_alloc.h"

/* Any constant: the advisory lock that serialises concurrent migrators. */
#define MIGRATION_LOCK "7461626"

static int
s_apply_one (cv_pg_t *pg, const cv_migration_t *migration, bool *applied, cv_error_t *err)
{
    char version[16];
    snprintf (version, sizeof version, "%d", migration->version);
    const char *params[] = {version, migration->name};
    if (cv_pg_run (pg, "BEGIN", 0, NULL, err))
        return -1;
    PGresult *seen = cv_pg_exec (pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, err);
    if (!seen)
        goto rollback;
    *applied = PQntuples (seen) == 0;
    PQclear (seen);
    if (*applied) {
        /* PQexec, not PQexecParams: a migration file holds several statements. */
        PGconn *conn = cv_pg_conn (pg, err);
        PGresult *result = conn ? PQexec (conn, migration->sql) : NULL;
        if (!result || PQresultStatus (result) != PGRES_COMMAND_OK) {
            cv_pg_fail (conn, result, migration->name, err);
            PQclear (result);
            goto rollback;
        }
        PQclear (result);
        if (cv_pg_run (pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params, err))
            goto rollback;
    }
    return cv_pg_run (pg, "COMMIT", 0, NULL, err);
rollback : {
    cv_error_t ignored;
    (void) cv_pg_run (pg, "ROLLBACK", 0, NULL, &ignored);
    return -1;
}
}

int
cv_migrations_apply (cv_pg_t *pg, int *applied, cv_error_t *err)
{
    assert (pg && applied);
    *applied = 0;
    if (cv_pg_run (pg,
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version integer PRIMARY KEY, name text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now())",
                   0, NULL, err))
        return -1;
    if (cv_pg_run (pg, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", 0, NULL, err))
        return -1;
    int rc = 0;
    for (size_t i = 0; i < cv_migrations_count && rc == 0; i++) {
        bool ran = false;
        rc = s_apply_one (pg, &cv_migrations[i], &ran, err);
        *applied += ran;
    }
    cv_error_t ignored;
    (void) cv_pg_run (pg, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")", 0, NULL, &ignored);
    return rc;
}

int
cv_migrations_latest (void)
{
    return cv_migrations_count ? cv_migrations[cv_migrations_count - 1].version : 0;
}

/* The URL of database name on url's server: url's path replaced (a fixture URL has no query). */
static char *
s_test_database_url (const char *url, const char *name)
{
    const char *slash = strrchr (url, '/');
    assert (slash && !strchr (slash, '?'));
    size_t size = (size_t) (slash - url) + 1 + strlen (name) + 1;
    char *result = cv_malloc (size);
    snprintf (result, size, "%.*s/%s", (int) (slash - url), url, name);
    return result;
}

static int64_t
s_test_count (cv_pg_t *pg, const char *sql)
{
    cv_error_t err;
    cv_pg_result_t *result = cv_pg_exec (pg, sql, 0, NULL, &err);
    cv_assert_that (result, "%s: %s", sql, err.message);
    assert (cv_pg_result_rows (result) == 1);
    int64_t value = cv_pg_result_int (result, 0, 0);
    cv_pg_result_destroy (&result);
    return value;
}

void
cv_migrations_test (bool verbose)
{
    char *url = cv_pg_fixture_url ();
    cv_assert_that (url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");

    /* versions rise, each migration has a name and SQL, and the latest is the last one */
    assert (cv_migrations_count > 0);
    for (size_t i = 0; i < cv_migrations_count; i++) {
        assert (cv_migrations[i].name && *cv_migrations[i].name && cv_migrations[i].sql);
        if (i)
            cv_assert_that (cv_migrations[i].version > cv_migrations[i - 1].version, "migration %s comes after %d",
                            cv_migrations[i].name, cv_migrations[i - 1].version);
    }
    assert (cv_migrations_latest () == cv_migrations[cv_migrations_count - 1].version);

    /* an empty database of this process's own: the fixture's is migrated already */
    char name[64];
    snprintf (name, sizeof name, "cv_migrations_test_%d", (int) getpid ());
    char drop[128], create[128];
    snprintf (drop, sizeof drop, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    snprintf (create, sizeof create, "CREATE DATABASE %s TEMPLATE template0", name);
    cv_error_t err;
    cv_pg_t *admin = cv_pg_new (url, "cv_migrations_test", &err);
    cv_assert_that (admin, "connect: %s", err.message);
    cv_assert_that (!cv_pg_run (admin, drop, 0, NULL, &err), "%s: %s", drop, err.message);
    cv_assert_that (!cv_pg_run (admin, create, 0, NULL, &err), "%s: %s", create, err.message);

    char *database_url = s_test_database_url (url, name);
    cv_pg_t *pg = cv_pg_new (database_url, "cv_migrations_test", &err);
    cv_assert_that (pg, "connect to %s: %s", database_url, err.message);

    /* the first run applies every migration and records each */
    int applied = -1;
    cv_assert_that (!cv_migrations_apply (pg, &applied, &err), "apply: %s", err.message);
    cv_assert_that (applied == (int) cv_migrations_count, "applied %d of %zu", applied, cv_migrations_count);
    assert (s_test_count (pg, "SELECT count(*) FROM schema_migrations") == (int64_t) cv_migrations_count);
    assert (s_test_count (pg, "SELECT max(version) FROM schema_migrations") == cv_migrations_latest ());

    /* a second run finds nothing to do */
    applied = -1;
    cv_assert_that (!cv_migrations_apply (pg, &applied, &err), "apply again: %s", err.message);
    cv_assert_that (applied == 0, "applied %d on a migrated database", applied);
    assert (s_test_count (pg, "SELECT count(*) FROM schema_migrations") == (int64_t) cv_migrations_count);

    /* a migration recorded as missing runs again, in its own transaction: a failure rolls back */
    cv_assert_that (!cv_pg_run (pg,
                                "DELETE FROM schema_migrations WHERE version = (SELECT min(version) FROM "
                                "schema_migrations)",
                                0, NULL, &err),
                    "delete: %s", err.message);
    applied = -1;
    assert (cv_migrations_apply (pg, &applied, &err) == -1);
    cv_assert_that (err.code == CV_ERR_INTERNAL, "re-running a migration failed with %s: %s",
                    cv_error_code_name (err.code), err.message);
    assert (s_test_count (pg, "SELECT count(*) FROM schema_migrations") == (int64_t) cv_migrations_count - 1);

    cv_pg_destroy (&pg);
    free (database_url);
    cv_assert_that (!cv_pg_run (admin, drop, 0, NULL, &err), "%s: %s", drop, err.message);
    cv_pg_destroy (&admin);
    free (url);
    if (verbose)
        printf ("cv_migrations: %zu migrations applied to %s, then none, then a failed re-run\n", cv_migrations_count,
                name);
}
