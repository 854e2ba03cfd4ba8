/* A PostgreSQL connection (libpq): connect with a timeout, reconnect when lost, run parameterised
   statements and read their results. */
#include "cv_pg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"

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
    cv_pg_t *self = cv_calloc (1, sizeof *self);
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

/* err from a SQLSTATE (may be NULL) and a message: one line, UNAVAILABLE when a retry may help. */
static int
s_fail (const char *state, const char *message, bool lost, const char *what, cv_error_t *err)
{
    char line[400];
    snprintf (line, sizeof line, "%s", message && *message ? message : "unknown error");
    for (char *c = line; *c; c++)
        if (*c == '\n')
            *c = (c[1] ? ' ' : '\0');
    /* Class 08 (connection exception) and 57P (operator intervention: shutdown) are worth a retry. */
    bool transient = lost || (state && (strncmp (state, "08", 2) == 0 || strncmp (state, "57P", 3) == 0));
    return cv_error_set (err, transient ? CV_ERR_UNAVAILABLE : CV_ERR_INTERNAL, NULL, "postgresql %s failed%s%s%s: %s",
                         what, state ? " (" : "", state ? state : "", state ? ")" : "", line);
}

int
cv_pg_fail (PGconn *conn, const cv_pg_result_t *result, const char *what, cv_error_t *err)
{
    const char *state = result ? PQresultErrorField (result, PG_DIAG_SQLSTATE) : NULL;
    const char *message = result ? PQresultErrorMessage (result) : (conn ? PQerrorMessage (conn) : "out of memory");
    return s_fail (state, message, !conn || PQstatus (conn) != CONNECTION_OK, what, err);
}

static bool
s_succeeded (const cv_pg_result_t *result)
{
    ExecStatusType status = PQresultStatus (result);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

cv_pg_result_t *
cv_pg_exec (cv_pg_t *self, const char *sql, int count, const char *const *params, cv_error_t *err)
{
    PGconn *conn = cv_pg_conn (self, err);
    if (!conn)
        return NULL;
    PGresult *result = PQexecParams (conn, sql, count, NULL, params, NULL, NULL, 0);
    if (s_succeeded (result))
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

void
cv_pg_result_destroy (cv_pg_result_t **result_p)
{
    assert (result_p);
    PQclear (*result_p);
    *result_p = NULL;
}

int
cv_pg_result_check (const cv_pg_result_t *result, const char *what, cv_error_t *err)
{
    if (!result)
        return s_fail (NULL, "out of memory", false, what, err);
    if (s_succeeded (result))
        return 0;
    const char *message = PQresultErrorMessage (result);
    return s_fail (PQresultErrorField (result, PG_DIAG_SQLSTATE),
                   *message ? message : PQresStatus (PQresultStatus (result)), false, what, err);
}

int
cv_pg_result_rows (const cv_pg_result_t *result)
{
    assert (result);
    return PQntuples (result);
}

static void
s_check_cell (const cv_pg_result_t *result, int row, int column)
{
    assert (result);
    assert (row >= 0 && row < PQntuples (result)); /* reading past the rows is a bug */
    assert (column >= 0 && column < PQnfields (result));
}

bool
cv_pg_result_is_null (const cv_pg_result_t *result, int row, int column)
{
    s_check_cell (result, row, column);
    return PQgetisnull (result, row, column) == 1;
}

const char *
cv_pg_result_text (const cv_pg_result_t *result, int row, int column)
{
    s_check_cell (result, row, column);
    return PQgetvalue (result, row, column);
}

int64_t
cv_pg_result_int (const cv_pg_result_t *result, int row, int column)
{
    return strtoll (cv_pg_result_text (result, row, column), NULL, 10);
}

double
cv_pg_result_real (const cv_pg_result_t *result, int row, int column)
{
    return strtod (cv_pg_result_text (result, row, column), NULL);
}

bool
cv_pg_result_bool (const cv_pg_result_t *result, int row, int column)
{
    return strcmp (cv_pg_result_text (result, row, column), "t") == 0;
}

const uint8_t *
cv_pg_result_bytes (const cv_pg_result_t *result, int row, int column, size_t *size)
{
    assert (size);
    s_check_cell (result, row, column);
    *size = (size_t) PQgetlength (result, row, column);
    return (const uint8_t *) PQgetvalue (result, row, column);
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
    return cv_strdup (line);
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

    /* The accessors, over a result made by hand as a query would return it: (id, n, ok, blob). */
    cv_pg_result_t *result = PQmakeEmptyPGresult (NULL, PGRES_TUPLES_OK);
    assert (result);
    PGresAttDesc columns[4] = {{.name = "id", .format = 0},
                               {.name = "n", .format = 0},
                               {.name = "ok", .format = 0},
                               {.name = "blob", .format = 1}};
    assert (PQsetResultAttrs (result, 4, columns));
    assert (PQsetvalue (result, 0, 0, "r-1", 3) && PQsetvalue (result, 0, 1, "-42", 3));
    assert (PQsetvalue (result, 0, 2, "t", 1) && PQsetvalue (result, 0, 3, "a\0b", 3));
    assert (PQsetvalue (result, 1, 0, "r-2", 3) && PQsetvalue (result, 1, 1, "2.5", 3));
    assert (PQsetvalue (result, 1, 2, "f", 1) && PQsetvalue (result, 1, 3, NULL, -1));
    assert (cv_pg_result_check (result, "query", &err) == 0);
    assert (cv_pg_result_rows (result) == 2);
    assert (strcmp (cv_pg_result_text (result, 1, 0), "r-2") == 0);
    assert (cv_pg_result_int (result, 0, 1) == -42);
    assert (cv_pg_result_real (result, 1, 1) == 2.5);
    assert (cv_pg_result_bool (result, 0, 2) && !cv_pg_result_bool (result, 1, 2));
    size_t size = 0;
    const uint8_t *bytes = cv_pg_result_bytes (result, 0, 3, &size);
    assert (size == 3 && bytes[0] == 'a' && bytes[1] == 0 && bytes[2] == 'b');
    assert (!cv_pg_result_is_null (result, 0, 3) && cv_pg_result_is_null (result, 1, 3));
    assert (strcmp (cv_pg_result_text (result, 1, 3), "") == 0);
    cv_pg_result_destroy (&result);
    assert (!result);
    cv_pg_result_destroy (&result); /* idempotent */

    /* A failed result: the server's message, one line; a lost server is worth a retry. */
    result = PQmakeEmptyPGresult (NULL, PGRES_FATAL_ERROR);
    assert (cv_pg_result_check (result, "load", &err) == -1);
    assert (err.code == CV_ERR_INTERNAL && strstr (err.message, "postgresql load failed"));
    cv_pg_result_destroy (&result);
    assert (cv_pg_result_check (NULL, "load", &err) == -1 && strstr (err.message, "out of memory"));
    assert (s_fail ("57P01", "terminating connection\ndue to administrator command\n", false, "run", &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE);
    assert (strcmp (err.message, "postgresql run failed (57P01): terminating connection due to administrator command")
            == 0);
    assert (s_fail ("23505", "duplicate key", false, "run", &err) == -1 && err.code == CV_ERR_INTERNAL);
    if (verbose)
        printf ("cv_pg: ok\n");
}
