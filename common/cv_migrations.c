/* The SQL migrations compiled into the binaries, and their runner. */
#include "cv_migrations.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

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
