/* A PostgreSQL connection (libpq): connect with a timeout, reconnect when lost, run parameterised statements. */
#include "cv_pg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT "5"

struct _cv_pg_t {
    PGconn *conn;
};

static PGconn *
s_connect (const char *url, const char *application_name, cv_error_t *err)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *values[] = {url, application_name, CONNECT_TIMEOUT, NULL};
    /* expand_dbname: the url is expanded first, and the entries after it override its settings */
    PGconn *conn = PQconnectdbParams (keys, values, 1);
    if (!conn || PQstatus (conn) != CONNECTION_OK) {
        cv_pg_fail (conn, NULL, "connect", err);
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

cv_pg_t *
cv_pg_new (const char *url, const char *application_name, cv_error_t *err)
{
    assert (url && application_name);
    PGconn *conn = s_connect (url, application_name, err);
    if (!conn)
        return NULL;
    cv_pg_t *self = calloc (1, sizeof *self);
    self->conn = conn;
    return self;
}

void
cv_pg_destroy (cv_pg_t **self_p)
{
    assert (self_p);
    cv_pg_t *self = *self_p;
    if (!self)
        return;
    PQfinish (self->conn);
    free (self);
    *self_p = NULL;
}

PGconn *
cv_pg_conn (cv_pg_t *self, cv_error_t *err)
{
    if (PQstatus (self->conn) != CONNECTION_OK) {
        PQreset (self->conn);
        if (PQstatus (self->conn) != CONNECTION_OK) {
            cv_pg_fail (self->conn, NULL, "reconnect", err);
            return NULL;
        }
    }
    return self->conn;
}

int
cv_pg_fail (PGconn *conn, const PGresult *result, const char *what, cv_error_t *err)
{
    const char *state = result ? PQresultErrorField (result, PG_DIAG_SQLSTATE) : NULL;
    const char *message = result ? PQresultErrorMessage (result) : (conn ? PQerrorMessage (conn) : "out of memory");
    char line[400];
    snprintf (line, sizeof line, "%s", message && *message ? message : "unknown error");
    for (char *c = line; *c; c++)
        if (*c == '\n')
            *c = (c[1] ? ' ' : '\0');
    bool lost = !conn || PQstatus (conn) != CONNECTION_OK;
    /* Class 08 (connection exception) and 57P (operator intervention: shutdown) are worth a retry. */
    bool transient = lost || (state && (strncmp (state, "08", 2) == 0 || strncmp (state, "57P", 3) == 0));
    return cv_error_set (err, transient ? CV_ERR_UNAVAILABLE : CV_ERR_INTERNAL, NULL, "postgresql %s failed%s%s%s: %s",
                         what, state ? " (" : "", state ? state : "", state ? ")" : "", line);
}

PGresult *
cv_pg_exec (cv_pg_t *self, const char *sql, int count, const char *const *params, cv_error_t *err)
{
    PGconn *conn = cv_pg_conn (self, err);
    if (!conn)
        return NULL;
    PGresult *result = PQexecParams (conn, sql, count, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus (result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return result;
    cv_pg_fail (conn, result, "statement", err);
    PQclear (result);
    return NULL;
}

int
cv_pg_run (cv_pg_t *self, const char *sql, int count, const char *const *params, cv_error_t *err)
{
    PGresult *result = cv_pg_exec (self, sql, count, params, err);
    if (!result)
        return -1;
    PQclear (result);
    return 0;
}

char *
cv_pg_fixture_url (void)
{
    const char *file = getenv ("CONVEYOR_TEST_PG_URL_FILE");
    FILE *handle = file ? fopen (file, "r") : NULL;
    char line[512];
    bool read = handle && fgets (line, sizeof line, handle);
    if (handle)
        fclose (handle);
    if (!read)
        return NULL;
    line[strcspn (line, "\n")] = '\0';
    return strdup (line);
}

void
cv_pg_test (bool verbose)
{
    /* Without a server: connecting fails with UNAVAILABLE and a readable message, never a crash.
       The statement paths run against a real server in tests/isolation. */
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new ("postgresql://nobody@127.0.0.1:1/none", "cv_pg_test", &err);
    assert (!pg);
    assert (err.code == CV_ERR_UNAVAILABLE);
    assert (strstr (err.message, "postgresql connect failed"));
    assert (!strchr (err.message, '\n'));
    cv_pg_destroy (&pg);
    if (verbose)
        printf ("cv_pg: ok\n");
}
