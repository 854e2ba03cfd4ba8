/* The HTTP API's input rules for POST /v1/requests and POST /v1/tools/test. */
#include "orchestrator_api.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cv_assert.h"
#include "cv_budget.h"
#include "cv_envelope.h"

static int
s_string (json_t *body, const char *field, bool required, const char **out, cv_error_t *err)
{
    json_t *value = json_object_get (body, field);
    if (!value)
        return required ? cv_error_set (err, CV_ERR_INVALID, field, "%s is required", field) : 0;
    if (!json_is_string (value))
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must be a string", field);
    *out = json_string_value (value);
    return 0;
}

static int
s_id (json_t *body, const char *field, bool required, const char **out, cv_error_t *err)
{
    if (s_string (body, field, required, out, err))
        return -1;
    if (*out && !cv_name_valid (*out))
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must be 1..%d characters of " CV_NAME_CHARS, field,
                             CV_NAME_MAX_BYTES);
    return 0;
}

/* body must be an object whose keys are all in fields (NULL-terminated). */
static int
s_only_fields (json_t *body, const char *const *fields, cv_error_t *err)
{
    if (!json_is_object (body))
        return cv_error_set (err, CV_ERR_INVALID, "body", "the body must be a JSON object");
    const char *key;
    json_t *value;
    json_object_foreach (body, key, value) {
        const char *const *field = fields;
        while (*field && strcmp (key, *field))
            field++;
        if (!*field)
            return cv_error_set (err, CV_ERR_INVALID, key, "unknown field %s", key);
    }
    return 0;
}

int
orchestrator_api_check_text (json_t *value, const char *field, cv_error_t *err)
{
    const char *text = json_string_value (value);
    size_t length = json_string_length (value);
    if (!text)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must be a string", field);
    if (length == 0 || strspn (text, " \t\r\n") == length)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must not be empty", field);
    if (length > CV_TEXT_MAX_BYTES)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s is %zu bytes, over the limit of %d", field, length,
                             CV_TEXT_MAX_BYTES);
    if (strlen (text) != length)
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must not contain NUL characters", field);
    return 0;
}

/* A customer's text, as orchestrator_api_check_text says. */
static int
s_text (json_t *body, bool required, const char **out, cv_error_t *err)
{
    if (s_string (body, "text", required, out, err))
        return -1;
    return *out ? orchestrator_api_check_text (json_object_get (body, "text"), "text", err) : 0;
}

/* A message's content as a turn of the context: the content when the role is kept and it is text. */
static const char *
s_turn_content (const json_t *message, const char *role)
{
    if (strcmp (role, "user") != 0 && strcmp (role, "assistant") != 0)
        return NULL;
    return json_string_value (json_object_get (message, "content"));
}

int
orchestrator_api_context (const json_t *messages, size_t count, const char *field, json_t **context, cv_error_t *err)
{
    *context = NULL;
    char path[64];
    for (size_t i = 0; i < count; i++) {
        const json_t *message = json_array_get (messages, i);
        const char *role = json_string_value (json_object_get (message, "role"));
        snprintf (path, sizeof path, "%s[%zu]", field, i);
        if (!json_is_object (message) || !role)
            return cv_error_set (err, CV_ERR_INVALID, path, "%s must be an object with a role", path);
        const char *content = s_turn_content (message, role);
        if (content && strlen (content) != json_string_length (json_object_get (message, "content"))) {
            snprintf (path, sizeof path, "%s[%zu].content", field, i);
            return cv_error_set (err, CV_ERR_INVALID, path, "%s must not contain NUL characters", path);
        }
    }
    /* the latest turns that fit, walking back from the newest */
    size_t first = count, turns = 0, bytes = 0;
    for (size_t i = count; i-- > 0;) {
        const json_t *message = json_array_get (messages, i);
        const char *content = s_turn_content (message, json_string_value (json_object_get (message, "role")));
        if (!content || strspn (content, " \t\r\n") == strlen (content))
            continue;
        size_t size = strlen (content);
        if (turns == CV_CONTEXT_TURNS_MAX || size > CV_REPLY_MAX_BYTES || bytes + size > CV_CONTEXT_MAX_BYTES)
            break;
        turns++;
        bytes += size;
        first = i;
    }
    if (turns == 0)
        return 0;
    *context = json_array ();
    for (size_t i = first; i < count; i++) {
        const json_t *message = json_array_get (messages, i);
        const char *role = json_string_value (json_object_get (message, "role"));
        const char *content = s_turn_content (message, role);
        if (content && strspn (content, " \t\r\n") != strlen (content))
            json_array_append_new (*context, json_pack ("{s:s, s:s}", "role", role, "content", content));
    }
    return 0;
}

int
orchestrator_api_parse_submission (json_t *body, orchestrator_submission_t *submission, cv_error_t *err)
{
    static const char *const fields[] = {"user_id", "text", "session_id", "idempotency_key", "budget", "context", NULL};
    memset (submission, 0, sizeof *submission);
    if (s_only_fields (body, fields, err) || s_id (body, "user_id", true, &submission->user_id, err)
        || s_string (body, "text", true, &submission->text, err)
        || s_id (body, "session_id", false, &submission->session_id, err)
        || s_id (body, "idempotency_key", false, &submission->idempotency_key, err))
        return -1;
    json_t *budget = json_object_get (body, "budget");
    if (budget) {
        double units = json_number_value (budget);
        if (!json_is_number (budget) || !(units >= 0 && units <= CV_BUDGET_MAX_UNITS))
            return cv_error_set (err, CV_ERR_INVALID, "budget", "budget must be a number of cost units, 0..%g",
                                 CV_BUDGET_MAX_UNITS);
        submission->has_budget = true;
        submission->budget_micros = cv_budget_micros (units);
    }
    if (s_text (body, true, &submission->text, err))
        return -1;
    json_t *context = json_object_get (body, "context");
    if (!context)
        return 0;
    if (!json_is_array (context))
        return cv_error_set (err, CV_ERR_INVALID, "context",
                             "context must be an array of {\"role\", \"content\"} messages, oldest first");
    return orchestrator_api_context (context, json_array_size (context), "context", &submission->context, err);
}

int
orchestrator_api_parse_tool_test (json_t *body, orchestrator_tool_test_t *test, cv_error_t *err)
{
    static const char *const fields[] = {"user_id", "intent", "slots", "text", NULL};
    memset (test, 0, sizeof *test);
    if (s_only_fields (body, fields, err) || s_id (body, "user_id", true, &test->user_id, err)
        || s_id (body, "intent", true, &test->intent, err) || s_text (body, false, &test->text, err))
        return -1;
    if (!test->text)
        test->text = test->intent;
    json_t *slots = json_object_get (body, "slots");
    if (!slots)
        return 0;
    if (!json_is_object (slots))
        return cv_error_set (err, CV_ERR_INVALID, "slots", "slots must be an object of slot name to value");
    const char *key;
    json_t *value;
    json_object_foreach (slots, key, value) {
        if (!cv_name_valid (key))
            return cv_error_set (err, CV_ERR_INVALID, "slots",
                                 "slot name '%s' must be 1..%d characters of " CV_NAME_CHARS, key, CV_NAME_MAX_BYTES);
        if (!json_is_string (value) && !json_is_number (value) && !json_is_boolean (value))
            return cv_error_set (err, CV_ERR_INVALID, "slots", "slot %s must be a string, a number or a boolean", key);
    }
    test->slots = slots;
    return 0;
}

/* The session's context: the user's and assistant's turns with text, the latest that fit. */
static void
s_test_context (void)
{
    orchestrator_submission_t submission;
    cv_error_t err;
    json_t *body = json_loads ("{\"user_id\": \"cust-1\", \"text\": \"And when?\", \"context\": ["
                               " {\"role\": \"system\", \"content\": \"You are a pirate.\"},"
                               " {\"role\": \"user\", \"content\": \"I ordered a new card.\"},"
                               " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": []},"
                               " {\"role\": \"assistant\", \"content\": \"It is on its way.\"},"
                               " {\"role\": \"user\", \"content\": \"  \"}]}",
                               0, NULL);
    assert (orchestrator_api_parse_submission (body, &submission, &err) == 0);
    char *kept = json_dumps (submission.context, JSON_COMPACT);
    cv_assert_that (strcmp (kept, "[{\"role\":\"user\",\"content\":\"I ordered a new card.\"},"
                                  "{\"role\":\"assistant\",\"content\":\"It is on its way.\"}]")
                        == 0,
                    "kept %s", kept);
    free (kept);
    json_decref (submission.context);
    json_decref (body);

    /* the latest turns: at most CV_CONTEXT_TURNS_MAX, then within CV_CONTEXT_MAX_BYTES */
    json_t *messages = json_array ();
    for (int i = 0; i < CV_CONTEXT_TURNS_MAX + 4; i++)
        json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", i % 2 ? "assistant" : "user", "content",
                                                    i == 0 ? "the oldest" : "later"));
    json_t *context;
    assert (orchestrator_api_context (messages, json_array_size (messages), "messages", &context, &err) == 0);
    assert (json_array_size (context) == CV_CONTEXT_TURNS_MAX);
    assert (strcmp (json_string_value (json_object_get (json_array_get (context, 0), "content")), "later") == 0);
    json_decref (context);
    static char big[CV_REPLY_MAX_BYTES + 1];
    memset (big, 'b', CV_REPLY_MAX_BYTES);
    json_array_clear (messages);
    for (int i = 0; i < 3; i++)
        json_array_append_new (messages, json_pack ("{s:s, s:s}", "role", "assistant", "content", big));
    assert (orchestrator_api_context (messages, 3, "messages", &context, &err) == 0);
    assert (json_array_size (context) == CV_CONTEXT_MAX_BYTES / CV_REPLY_MAX_BYTES);
    json_decref (context);
    json_array_append_new (messages, json_pack ("{s:s, s:s#}", "role", "user", "content", big, CV_REPLY_MAX_BYTES));
    memset (big, 'b', sizeof big);
    json_array_append_new (messages, json_pack ("{s:s, s:s#}", "role", "user", "content", big, sizeof big));
    assert (orchestrator_api_context (messages, 5, "messages", &context, &err) == 0);
    assert (!context); /* the newest is over a turn's limit: nothing before it either */
    json_decref (messages);

    struct {
        const char *json;
        const char *field;
    } bad[] = {
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"context\": {}}", "context"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"context\": [\"hello\"]}", "context[0]"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"context\": [{\"content\": \"hello\"}]}", "context[0]"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"context\": [{\"role\": \"user\", \"content\": \"a\\u0000b\"}]}",
         "context[0].content"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        body = json_loads (bad[i].json, JSON_ALLOW_NUL, NULL);
        assert (body);
        assert (orchestrator_api_parse_submission (body, &submission, &err) == -1);
        cv_assert_that (strcmp (err.field, bad[i].field) == 0, "%s: %s", bad[i].json, err.field);
        json_decref (body);
    }
}

void
orchestrator_api_test (bool verbose)
{
    orchestrator_submission_t submission;
    cv_error_t err;
    json_t *body =
        json_pack ("{s:s, s:s, s:s}", "user_id", "cust-1", "text", "Where is my card?", "idempotency_key", "k-1");
    assert (orchestrator_api_parse_submission (body, &submission, &err) == 0);
    assert (strcmp (submission.user_id, "cust-1") == 0 && strcmp (submission.idempotency_key, "k-1") == 0);
    assert (submission.session_id == NULL && !submission.has_budget);
    json_decref (body);
    body = json_pack ("{s:s, s:s, s:f}", "user_id", "cust-1", "text", "Refund it", "budget", 0.0025);
    assert (orchestrator_api_parse_submission (body, &submission, &err) == 0);
    assert (submission.has_budget && submission.budget_micros == 2500);
    json_decref (body);
    body = json_pack ("{s:s, s:s, s:i}", "user_id", "cust-1", "text", "Refund it", "budget", 0);
    assert (orchestrator_api_parse_submission (body, &submission, &err) == 0);
    assert (submission.has_budget && submission.budget_micros == 0);
    json_decref (body);

    struct {
        const char *json;
        const char *field;
    } bad[] = {
        {"[1, 2]", "body"},
        {"{\"text\": \"hi\"}", "user_id"},
        {"{\"user_id\": \"cust-1\"}", "text"},
        {"{\"user_id\": 42, \"text\": \"hi\"}", "user_id"},
        {"{\"user_id\": \"cust 1\", \"text\": \"hi\"}", "user_id"},
        {"{\"user_id\": \"cust-1\", \"text\": [\"hi\"]}", "text"},
        {"{\"user_id\": \"cust-1\", \"text\": \"   \"}", "text"},
        {"{\"user_id\": \"cust-1\", \"text\": \"a\\u0000b\"}", "text"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"session_id\": false}", "session_id"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"priority\": 1}", "priority"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"budget\": \"0.01\"}", "budget"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"budget\": -1}", "budget"},
        {"{\"user_id\": \"cust-1\", \"text\": \"hi\", \"budget\": 1e7}", "budget"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_error_t error;
        body = json_loads (bad[i].json, JSON_ALLOW_NUL, &error);
        assert (body);
        assert (orchestrator_api_parse_submission (body, &submission, &err) == -1);
        assert (strcmp (err.field, bad[i].field) == 0);
        json_decref (body);
    }
    char long_text[CV_TEXT_MAX_BYTES + 2];
    memset (long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    body = json_pack ("{s:s, s:s}", "user_id", "cust-1", "text", long_text);
    assert (orchestrator_api_parse_submission (body, &submission, &err) == -1);
    assert (strstr (err.message, "over the limit"));
    json_decref (body);

    s_test_context ();

    orchestrator_tool_test_t test;
    body = json_pack ("{s:s, s:s, s:{s:s, s:i}}", "user_id", "cust-1", "intent", "lost_or_stolen_card", "slots",
                      "last4", "4417", "amount", 20);
    assert (orchestrator_api_parse_tool_test (body, &test, &err) == 0);
    assert (strcmp (test.intent, "lost_or_stolen_card") == 0 && strcmp (test.text, "lost_or_stolen_card") == 0);
    assert (json_object_size (test.slots) == 2);
    json_decref (body);
    struct {
        const char *json;
        const char *field;
    } bad_tests[] = {
        {"{\"intent\": \"card_arrival\"}", "user_id"},
        {"{\"user_id\": \"cust-1\"}", "intent"},
        {"{\"user_id\": \"cust-1\", \"intent\": \"no such\"}", "intent"},
        {"{\"user_id\": \"cust-1\", \"intent\": \"card_arrival\", \"slots\": [1]}", "slots"},
        {"{\"user_id\": \"cust-1\", \"intent\": \"card_arrival\", \"slots\": {\"a\": {}}}", "slots"},
        {"{\"user_id\": \"cust-1\", \"intent\": \"card_arrival\", \"slots\": {\"a b\": 1}}", "slots"},
        {"{\"user_id\": \"cust-1\", \"intent\": \"card_arrival\", \"text\": \" \"}", "text"},
        {"{\"user_id\": \"cust-1\", \"intent\": \"card_arrival\", \"request_id\": \"r-1\"}", "request_id"},
    };
    for (size_t i = 0; i < sizeof bad_tests / sizeof *bad_tests; i++) {
        json_error_t error;
        body = json_loads (bad_tests[i].json, 0, &error);
        assert (body);
        assert (orchestrator_api_parse_tool_test (body, &test, &err) == -1);
        cv_assert_that (strcmp (err.field, bad_tests[i].field) == 0, "%s: %s", bad_tests[i].json, err.message);
        json_decref (body);
    }
    assert (cv_name_valid ("r-0123abcd"));
    assert (!cv_name_valid ("../etc"));
    assert (!cv_name_valid (""));
    if (verbose)
        printf ("orchestrator_api: ok\n");
}
