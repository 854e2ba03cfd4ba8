/* The bank's answer to one action, read from its statement's rows. */
#include "executor_outcome.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <czmq.h>

#include "cv_assert.h"
#include "cv_context.h"
#include "cv_utf8.h"

/* A reason travels in a validated text field: one line, cut on a character's boundary. */
static void
s_one_line (char *reason)
{
    for (char *c = reason; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    size_t size = strlen (reason);
    while (size > 0 && !cv_utf8_valid (reason, size))
        reason[--size] = '\0';
}

void
executor_outcome_fail (executor_outcome_t *out, const char *format, ...)
{
    assert (out && format);
    executor_outcome_reset (out);
    out->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED;
    va_list args;
    va_start (args, format);
    vsnprintf (out->reason, sizeof out->reason, format, args);
    va_end (args);
    s_one_line (out->reason);
}

void
executor_outcome_reset (executor_outcome_t *out)
{
    assert (out);
    json_decref (out->result);
    *out = (executor_outcome_t){0};
}

void
executor_outcome_read (const json_t *rows, executor_outcome_t *out)
{
    assert (out);
    executor_outcome_reset (out);
    if (!json_is_array (rows) || json_array_size (rows) != 1) {
        executor_outcome_fail (out, "the action's statement returned %zu rows, not one", json_array_size (rows));
        return;
    }
    const char *text = json_string_value (json_object_get (json_array_get (rows, 0), "outcome"));
    if (!text) {
        executor_outcome_fail (out, "the action's statement returned no column `outcome` (or it is null)");
        return;
    }
    json_error_t error;
    json_t *answer = json_loads (text, JSON_REJECT_DUPLICATES, &error);
    const char *outcome = json_string_value (json_object_get (answer, "outcome"));
    json_t *replayed = json_object_get (answer, "replayed");
    json_t *reason = json_object_get (answer, "reason");
    bool done = outcome && strcmp (outcome, "done") == 0, refused = outcome && strcmp (outcome, "refused") == 0;
    if (!json_is_object (answer) || !(done || refused) || !json_is_boolean (replayed)
        || (refused && !json_is_string (reason))) {
        json_decref (answer);
        executor_outcome_fail (out, "the action's outcome is not {\"outcome\": \"done\"|\"refused\", \"replayed\": "
                                    "bool, \"reason\": text when refused}");
        return;
    }
    out->outcome = done ? CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE : CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED;
    out->replayed = json_is_true (replayed);
    if (refused) {
        snprintf (out->reason, sizeof out->reason, "%s", json_string_value (reason));
        s_one_line (out->reason);
    }
    json_object_del (answer, "outcome");
    json_object_del (answer, "replayed");
    out->result = answer;
}

/*  --------------------------------------------------------------------------
    Self-test */

/* Reads one row whose outcome column is text (NULL: no such column). */
static void
s_read (const char *text, executor_outcome_t *out)
{
    json_t *rows = text ? json_pack ("[{s:s}]", "outcome", text) : json_pack ("[{s:s}]", "other", "x");
    executor_outcome_read (rows, out);
    json_decref (rows);
}

void
executor_outcome_test (bool verbose)
{
    executor_outcome_t out = {0};
    s_read ("{\"outcome\": \"done\", \"replayed\": false, \"card_id\": \"card-1-1\", \"last4\": \"4417\"}", &out);
    assert (out.outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE && !out.replayed && !*out.reason);
    assert (json_object_size (out.result) == 2
            && streq (json_string_value (json_object_get (out.result, "last4")), "4417"));
    assert (streq (cv_context_action_outcome_name (out.outcome), "done"));
    s_read ("{\"outcome\": \"done\", \"replayed\": true}", &out);
    assert (out.outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE && out.replayed
            && json_object_size (out.result) == 0);
    s_read ("{\"outcome\": \"refused\", \"replayed\": false, \"reason\": \"the card is frozen, not active\"}", &out);
    assert (out.outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__REFUSED);
    assert (streq (out.reason, "the card is frozen, not active"));
    assert (streq (json_string_value (json_object_get (out.result, "reason")), "the card is frozen, not active"));

    /* anything else fails the action, saying why */
    const char *wrong[] = {"not json", "[1]", "{\"outcome\": \"maybe\", \"replayed\": false}",
                           "{\"outcome\": \"done\"}", "{\"outcome\": \"refused\", \"replayed\": false}"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        s_read (wrong[i], &out);
        assert (out.outcome == CONVEYOR__V1__ACTION_RESULT__OUTCOME__FAILED && !out.result);
        assert (strstr (out.reason, "the action's outcome is not"));
    }
    s_read (NULL, &out);
    assert (strstr (out.reason, "no column `outcome`"));
    json_t *rows = json_array ();
    executor_outcome_read (rows, &out);
    assert (streq (out.reason, "the action's statement returned 0 rows, not one"));
    json_decref (rows);
    executor_outcome_fail (&out, "line one\nline two");
    assert (streq (out.reason, "line one line two") && streq (cv_context_action_outcome_name (out.outcome), "failed"));
    char long_reason[1201] = {0}; /* 600 two-byte characters: cut within the limit, on a boundary */
    for (size_t i = 0; i < 600; i++)
        memcpy (long_reason + 2 * i, "\xc3\xa9", 2);
    executor_outcome_fail (&out, "%s", long_reason);
    assert (strlen (out.reason) == CV_DETAIL_MAX_BYTES - 2 && cv_utf8_valid (out.reason, strlen (out.reason)));
    executor_outcome_reset (&out);
    assert (out.outcome == 0 && !out.result);
    if (verbose)
        printf ("executor_outcome: ok\n");
}
