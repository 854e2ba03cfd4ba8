/* A PostgreSQL connection (libpq): connect with a timeout, reconnect when lost, run parameterised
   statements with errors fit for a log line, and read their results through typed accessors, so
   that services and the CLI never call libpq themselves. */
#ifndef CV_PG_H
#define CV_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cv_error.h"

typedef struct _cv_pg_t cv_pg_t;

/* A statement's result: libpq's, read with the cv_pg_result_* accessors below. */
typedef PGresult cv_pg_result_t;

/* Connects to url (a libpq connection URI or key=value string) as application_name.
   NULL with err (UNAVAILABLE) when the server cannot be reached. */
cv_pg_t *cv_pg_new (const char *url, const char *application_name, cv_error_t *err) CV_MUST_CHECK;
void cv_pg_destroy (cv_pg_t **self_p);

/* The connection, reconnecting first when it was lost; NULL with err when that fails. */
PGconn *cv_pg_conn (cv_pg_t *self, cv_error_t *err);

/* Runs sql with text parameters (params may hold NULLs). Returns the result, which the caller
   clears, or NULL with err: UNAVAILABLE when the connection failed, INTERNAL for a statement error. */
cv_pg_result_t *cv_pg_exec (cv_pg_t *self, const char *sql, int count, const char *const *params,
                            cv_error_t *err) CV_MUST_CHECK;

/* As cv_pg_exec for statements whose result is not needed. */
int cv_pg_run (cv_pg_t *self, const char *sql, int count, const char *const *params, cv_error_t *err);

/* Sets err from a failed result or connection: SQLSTATE and message on one line. */
int cv_pg_fail (PGconn *conn, const cv_pg_result_t *result, const char *what, cv_error_t *err);

/* Frees a result (NULL-safe) and nulls the caller's pointer. */
void cv_pg_result_destroy (cv_pg_result_t **result_p);

/* 0 when result holds a command's or a query's success, else -1 with err carrying the server's
   SQLSTATE and message (INTERNAL; UNAVAILABLE for a lost connection or a shutdown), what naming
   the operation ("statement", "load"). A NULL result counts as out of memory. */
int cv_pg_result_check (const cv_pg_result_t *result, const char *what, cv_error_t *err) CV_MUST_CHECK;

/* The rows a query returned (0 for a command). */
int cv_pg_result_rows (const cv_pg_result_t *result);

/* True when the value at row, column is SQL NULL. row and column must be in range (asserted). */
bool cv_pg_result_is_null (const cv_pg_result_t *result, int row, int column);

/* The value at row, column in text format, borrowed from result: "" for SQL NULL, as libpq has it. */
const char *cv_pg_result_text (const cv_pg_result_t *result, int row, int column);

/* The text value as a whole number (0 for NULL or text that is not one) and as a real number. */
int64_t cv_pg_result_int (const cv_pg_result_t *result, int row, int column);
double cv_pg_result_real (const cv_pg_result_t *result, int row, int column);

/* True for a boolean value in text format that is true ("t"). */
bool cv_pg_result_bool (const cv_pg_result_t *result, int row, int column);

/* The value's bytes, borrowed from result, and their count in *size: a binary-format bytea as the
   raw bytes, a text-format value as its text. */
const uint8_t *cv_pg_result_bytes (const cv_pg_result_t *result, int row, int column, size_t *size);

/* For tests: the URL of the test fixture's database, read from the file CONVEYOR_TEST_PG_URL_FILE
   names (see tests/fixtures/pg_fixture.cmake); a malloc'd string, or NULL when there is none. */
char *cv_pg_fixture_url (void);

void cv_pg_test (bool verbose);

#endif
