/* otest's look at the database through the test's own connection: rows, counts, checkpoints. */
#include "otest.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "cv_alloc.h"

/*  --------------------------------------------------------------------------
    The database, as the test's own connection sees it */

/* Runs sql with one text parameter; the caller clears the result. */
PGresult *
otest_query (otest_t *test, const char *sql, const char *param)
{
    cv_error_t err;
    const char *params[] = {param};
    PGresult *result = cv_pg_exec (test->pg, sql, param ? 1 : 0, params, &err);
    cv_assert_that (result, "%s: %s", sql, err.message);
    return result;
}

/* The request's status, "" when it has no row. */
static char *
s_db_status (otest_t *test, const char *id)
{
    PGresult *result = otest_query (test, "SELECT status FROM requests WHERE id = $1", id);
    char *status = cv_strdup (PQntuples (result) ? PQgetvalue (result, 0, 0) : "");
    PQclear (result);
    return status;
}

void
otest_expect_db_status (otest_t *test, const char *id, const char *expected)
{
    char *status = s_db_status (test, id);
    char what[96];
    snprintf (what, sizeof what, "the row of %s", id);
    otest_expect_streq (what, status, expected);
    free (status);
}

size_t
otest_db_count (otest_t *test, const char *sql, const char *param)
{
    PGresult *result = otest_query (test, sql, param);
    size_t count = (size_t) atol (PQgetvalue (result, 0, 0));
    PQclear (result);
    return count;
}

size_t
otest_db_checkpoints (otest_t *test, const char *id)
{
    return otest_db_count (test, "SELECT count(*) FROM checkpoints WHERE request_id = $1", id);
}

/* The request has exactly count checkpoints committed, in order, of stages[0..count), each
   holding the very bytes its stage's fake sent. */
static void
s_expect_checkpoints_of (otest_t *test, const char *id, const int *stages, size_t count)
{
    PGresult *result = otest_query (test,
                                    "SELECT seq, stage, encode(body, 'hex') FROM checkpoints"
                                    " WHERE request_id = $1 ORDER BY seq",
                                    id);
    cv_assert_that (!((size_t) PQntuples (result) != count), "request %s: expected %zu checkpoints, found %d", id,
                    count, PQntuples (result));
    for (size_t i = 0; i < count; i++) {
        assert (atoi (PQgetvalue (result, (int) i, 0)) == stages[i] + 1); /* seq is the stage's number */
        otest_expect_streq ("checkpoint stage", PQgetvalue (result, (int) i, 1), otest_stages[stages[i]]);
        otest_fake_t *fake = otest_fake (test, stages[i]);
        int index = otest_fake_find (fake, id);
        assert (index >= 0 && fake->sent[index]);
        char *hex = otest_hex (fake->sent[index], fake->sent_size[index]);
        char what[96];
        snprintf (what, sizeof what, "checkpoint %zu of %s", i + 1, id);
        otest_expect_streq (what, PQgetvalue (result, (int) i, 2), hex);
        free (hex);
    }
    PQclear (result);
}

void
otest_expect_checkpoints (otest_t *test, const char *id, size_t count)
{
    const int stages[OTEST_STAGES] = {OTEST_INTENT, OTEST_GATHERER, OTEST_DECISION, OTEST_EXECUTOR, OTEST_RESPONDER};
    assert (count <= OTEST_STAGES);
    s_expect_checkpoints_of (test, id, stages, count);
}

void
otest_expect_checkpoints_past_failure (otest_t *test, const char *id, int failed)
{
    int stages[OTEST_STAGES];
    assert (failed < OTEST_RESPONDER);
    for (int stage = 0; stage < failed; stage++)
        stages[stage] = stage;
    stages[failed] = OTEST_RESPONDER;
    s_expect_checkpoints_of (test, id, stages, (size_t) failed + 1);
}

typedef struct {
    const char *id;
    const char *status;
} row_wait_t;

static bool
s_row_reached (void *test_arg, const void *arg)
{
    otest_t *test = test_arg;
    const row_wait_t *wait = arg;
    char *status = s_db_status (test, wait->id);
    bool reached = streq (status, wait->status);
    free (status);
    return reached;
}

/* Waits until the request's row says status: for requests that finish with no client waiting. */
void
otest_wait_db_status (otest_t *test, const char *id, const char *status)
{
    row_wait_t wait = {id, status};
    cv_assert_that (otest_run_until (test, s_row_reached, &wait, OTEST_WAIT_MS),
                    "request %s did not become %s in the database", id, status);
}
