/* A PostgreSQL connection (libpq): connect with a timeout, reconnect when lost, run parameterised
   statements with errors fit for a log line. */
#ifndef CV_PG_H
#define CV_PG_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "cv_error.h"

typedef struct _cv_pg_t cv_pg_t;

/* Connects to url (a libpq connection URI or key=value string) as application_name.
   NULL with err (UNAVAILABLE) when the server cannot be reached. */
cv_pg_t *cv_pg_new (const char *url, const char *application_name, cv_error_t *err) CV_MUST_CHECK;
void cv_pg_destroy (cv_pg_t **self_p);

/* The connection, reconnecting first when it was lost; NULL with err when that fails. */
PGconn *cv_pg_conn (cv_pg_t *self, cv_error_t *err);

/* Runs sql with text parameters (params may hold NULLs). Returns the result, which the caller
   clears, or NULL with err: UNAVAILABLE when the connection failed, INTERNAL for a statement error. */
PGresult *cv_pg_exec (cv_pg_t *self, const char *sql, int count, const char *const *params, cv_error_t *err)
    CV_MUST_CHECK;

/* As cv_pg_exec for statements whose result is not needed. */
int cv_pg_run (cv_pg_t *self, const char *sql, int count, const char *const *params, cv_error_t *err);

/* Sets err from a failed result or connection: SQLSTATE and message on one line. */
int cv_pg_fail (PGconn *conn, const PGresult *result, const char *what, cv_error_t *err);

/* For tests: the URL of the test fixture's database, read from the file CONVEYOR_TEST_PG_URL_FILE
   names (see tests/fixtures/pg_fixture.cmake); a malloc'd string, or NULL when there is none. */
char *cv_pg_fixture_url (void);

void cv_pg_test (bool verbose);

#endif
