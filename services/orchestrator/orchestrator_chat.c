/* The OpenAI-compatible front door: chat completion requests read, answers and errors shaped. */
#include "orchestrator_chat.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_envelope.h"

/* The most messages a chat completion request may carry. */
#define CHAT_MAX_MESSAGES 256

static const char *const s_roles[] = {"system", "developer", "user", "assistant", "tool", NULL};

static bool
s_known_role (const char *role)
{
    for (const char *const *known = s_roles; *known; known++)
        if (strcmp (role, *known) == 0)
            return true;
    return false;
}

static int
s_user (const char *user, const char *where, cv_error_t *err)
{
    if (!cv_name_valid (user))
        return cv_error_set (err, CV_ERR_INVALID, "user", "%s must be 1..%d characters of " CV_NAME_CHARS, where,
                             CV_NAME_MAX_BYTES);
    return 0;
}

int
orchestrator_chat_parse (const orchestrator_chat_config_t *config, json_t *body, const char *header_user,
                         orchestrator_submission_t *submission, bool *stream_p, cv_error_t *err)
{
    memset (submission, 0, sizeof *submission);
    *stream_p = false;
    if (!json_is_object (body))
        return cv_error_set (err, CV_ERR_INVALID, "body", "the body must be a JSON object");
    const char *model = json_string_value (json_object_get (body, "model"));
    if (!model)
        return cv_error_set (err, CV_ERR_INVALID, "model", "model is required, a string: %s", config->model);
    if (strcmp (model, config->model) != 0)
        return cv_error_set (err, CV_ERR_INVALID, "model", "the model '%.64s' does not exist; this server has %s",
                             model, config->model);
    json_t *stream = json_object_get (body, "stream");
    if (stream && !json_is_boolean (stream) && !json_is_null (stream))
        return cv_error_set (err, CV_ERR_INVALID, "stream", "stream must be a boolean");
    *stream_p = json_is_true (stream);
    json_t *messages = json_object_get (body, "messages");
    size_t count = json_array_size (messages);
    if (!json_is_array (messages) || count == 0)
        return cv_error_set (err, CV_ERR_INVALID, "messages", "messages must be a non-empty array");
    if (count > CHAT_MAX_MESSAGES)
        return cv_error_set (err, CV_ERR_INVALID, "messages", "messages has %zu entries, over the limit of %d", count,
                             CHAT_MAX_MESSAGES);
    for (size_t i = 0; i < count; i++) {
        json_t *message = json_array_get (messages, i);
        const char *role = json_string_value (json_object_get (message, "role"));
        if (!json_is_object (message) || !role || !s_known_role (role))
            return cv_error_set (err, CV_ERR_INVALID, "messages",
                                 "messages[%zu] must be an object with a role: system, developer, user, assistant "
                                 "or tool",
                                 i);
    }
    json_t *last = json_array_get (messages, count - 1);
    if (strcmp (json_string_value (json_object_get (last, "role")), "user") != 0)
        return cv_error_set (err, CV_ERR_INVALID, "messages", "the last message must be the user's");
    json_t *content = json_object_get (last, "content");
    char field[64];
    snprintf (field, sizeof field, "messages[%zu].content", count - 1);
    if (!json_is_string (content))
        return cv_error_set (err, CV_ERR_INVALID, field, "%s must be a string (content parts are not taken)", field);
    if (orchestrator_api_check_text (content, field, err))
        return -1;
    submission->text = json_string_value (content);
    json_t *user = json_object_get (body, "user");
    if (user) {
        if (!json_is_string (user))
            return cv_error_set (err, CV_ERR_INVALID, "user", "user must be a string");
        submission->user_id = json_string_value (user);
        if (s_user (submission->user_id, "user", err))
            return -1;
    } else if (header_user) {
        submission->user_id = header_user;
        if (s_user (header_user, config->user_header, err))
            return -1;
    } else if (config->user_header)
        return cv_error_set (err, CV_ERR_INVALID, "user", "user is required (or the %s header): the customer's id",
                             config->user_header);
    else
        return cv_error_set (err, CV_ERR_INVALID, "user", "user is required: the customer's id");
    return orchestrator_api_context (messages, count - 1, "messages", &submission->context, err);
}

json_t *
orchestrator_chat_models (const orchestrator_chat_config_t *config)
{
    return json_pack ("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "object", "list", "data", "id", config->model, "object",
                      "model", "created", 0, "owned_by", "conveyor");
}

json_t *
orchestrator_chat_error (unsigned status, const char *message, const char *param, const char *code)
{
    return json_pack ("{s:{s:s, s:s, s:o, s:s}}", "error", "message", message, "type",
                      status < 500 ? "invalid_request_error" : "server_error", "param",
                      param ? json_string (param) : json_null (), "code", code);
}

/* The request's tokens, from its document's cost. */
static json_t *
s_usage (json_t *document)
{
    json_t *cost = json_object_get (document, "cost");
    json_int_t prompt = json_integer_value (json_object_get (cost, "prompt_tokens"));
    json_int_t completion = json_integer_value (json_object_get (cost, "completion_tokens"));
    return json_pack ("{s:I, s:I, s:I}", "prompt_tokens", prompt, "completion_tokens", completion, "total_tokens",
                      prompt + completion);
}

json_t *
orchestrator_chat_completion (const orchestrator_chat_config_t *config, unsigned status, json_t *document)
{
    const char *request_id = json_string_value (json_object_get (document, "request_id"));
    const char *state = json_string_value (json_object_get (document, "status"));
    const char *reply = json_string_value (json_object_get (json_object_get (document, "reply"), "text"));
    json_t *shaped;
    if (status == 200 && reply && request_id) {
        char id[CV_NAME_MAX_BYTES + 16];
        snprintf (id, sizeof id, "chatcmpl-%s", request_id);
        shaped =
            json_pack ("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o, s:{s:s, s:s}}", "id", id, "object",
                       "chat.completion", "created", (json_int_t) time (NULL), "model", config->model, "choices",
                       "index", 0, "message", "role", "assistant", "content", reply, "finish_reason", "stop", "usage",
                       s_usage (document), "conveyor", "request_id", request_id, "status", state ? state : "done");
    } else {
        json_t *error = json_object_get (document, "error");
        const char *message = json_string_value (json_object_get (error, "message"));
        const char *code = json_string_value (json_object_get (error, "code"));
        shaped = orchestrator_chat_error (status, message ? message : "the request could not be answered", NULL,
                                          code ? code : (state ? state : "error"));
        if (request_id)
            json_object_set_new (shaped, "conveyor",
                                 json_pack ("{s:s, s:s}", "request_id", request_id, "status", state ? state : ""));
    }
    json_decref (document);
    return shaped;
}

char *
orchestrator_chat_events (const json_t *completion)
{
    json_t *choice = json_array_get (json_object_get (completion, "choices"), 0);
    const char *content = json_string_value (json_object_get (json_object_get (choice, "message"), "content"));
    assert (content);
    json_t *chunk =
        json_pack ("{s:O, s:s, s:O, s:O, s:[{s:i, s:{s:s, s:s}, s:n}]}", "id", json_object_get (completion, "id"),
                   "object", "chat.completion.chunk", "created", json_object_get (completion, "created"), "model",
                   json_object_get (completion, "model"), "choices", "index", 0, "delta", "role", "assistant",
                   "content", content, "finish_reason");
    char *first = json_dumps (chunk, JSON_COMPACT | JSON_PRESERVE_ORDER);
    /* the last chunk: no more content, why it ended, the usage and conveyor's own fields */
    json_t *choices = json_pack ("[{s:i, s:{}, s:s}]", "index", 0, "delta", "finish_reason", "stop");
    json_object_set_new (chunk, "choices", choices);
    json_object_set (chunk, "usage", json_object_get (completion, "usage"));
    json_object_set (chunk, "conveyor", json_object_get (completion, "conveyor"));
    char *last = json_dumps (chunk, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (chunk);
    size_t size = strlen (first) + strlen (last) + 64;
    char *events = cv_malloc (size);
    snprintf (events, size, "data: %s\n\ndata: %s\n\ndata: [DONE]\n\n", first, last);
    free (first);
    free (last);
    return events;
}

/* X-Request-Id: conveyor's request id, where OpenAI's clients look for one (their _request_id). */
static void
s_add_request_id (orchestrator_exchange_t *exchange, const json_t *completion)
{
    const char *request_id =
        json_string_value (json_object_get (json_object_get (completion, "conveyor"), "request_id"));
    if (request_id)
        orchestrator_http_add_header (exchange, "X-Request-Id", request_id);
}

void
orchestrator_chat_answer (void *config, orchestrator_exchange_t *exchange, unsigned status, json_t *document)
{
    json_t *completion = orchestrator_chat_completion (config, status, document);
    s_add_request_id (exchange, completion);
    orchestrator_http_answer (exchange, status, completion);
}

void
orchestrator_chat_answer_stream (void *config, orchestrator_exchange_t *exchange, unsigned status, json_t *document)
{
    json_t *completion = orchestrator_chat_completion (config, status, document);
    s_add_request_id (exchange, completion);
    if (!json_object_get (completion, "choices")) { /* an error: before any event, as JSON */
        orchestrator_http_answer (exchange, status, completion);
        return;
    }
    orchestrator_http_add_header (exchange, "Cache-Control", "no-cache");
    orchestrator_http_answer_text (exchange, status, "text/event-stream", orchestrator_chat_events (completion));
    json_decref (completion);
}

/*  --------------------------------------------------------------------------
    Self-test */

static void
s_expect_refused (const orchestrator_chat_config_t *config, const char *text, const char *header_user,
                  const char *field)
{
    json_error_t error;
    json_t *body = json_loads (text, JSON_ALLOW_NUL, &error);
    cv_assert_that (body, "bad test JSON %s: %s", text, error.text);
    orchestrator_submission_t submission;
    cv_error_t err;
    bool stream;
    cv_assert_that (orchestrator_chat_parse (config, body, header_user, &submission, &stream, &err) == -1
                        && strcmp (err.field, field) == 0,
                    "%s: expected a refusal naming %s", text, field);
    json_decref (body);
}

void
orchestrator_chat_test (bool verbose)
{
    orchestrator_chat_config_t config = {.model = "bank-desk", .user_header = "X-User-Id"};
    json_t *body = json_loads ("{\"model\": \"bank-desk\", \"user\": \"cust-1\", \"temperature\": 0.2,"
                               " \"messages\": [{\"role\": \"system\", \"content\": \"Be kind.\"},"
                               "  {\"role\": \"user\", \"content\": \"hello\"},"
                               "  {\"role\": \"assistant\", \"content\": null},"
                               "  {\"role\": \"user\", \"content\": \"I lost my card\"}]}",
                               0, NULL);
    orchestrator_submission_t submission;
    cv_error_t err;
    bool stream = true;
    cv_assert_that (orchestrator_chat_parse (&config, body, "cust-9", &submission, &stream, &err) == 0, "parse: %s",
                    err.message);
    assert (strcmp (submission.text, "I lost my card") == 0 && strcmp (submission.user_id, "cust-1") == 0 && !stream);
    /* the earlier messages: the user's with text is the context, not the system's nor a null */
    assert (json_array_size (submission.context) == 1);
    assert (strcmp (json_string_value (json_object_get (json_array_get (submission.context, 0), "content")), "hello")
            == 0);
    json_decref (submission.context);
    json_object_del (body, "user"); /* the header's user, then */
    json_object_set_new (body, "stream", json_true ());
    assert (orchestrator_chat_parse (&config, body, "cust-9", &submission, &stream, &err) == 0);
    assert (strcmp (submission.user_id, "cust-9") == 0 && stream);
    json_decref (submission.context);
    assert (orchestrator_chat_parse (&config, body, NULL, &submission, &stream, &err) == -1
            && strcmp (err.field, "user") == 0);
    assert (strstr (err.message, "X-User-Id"));
    json_decref (body);

    s_expect_refused (&config, "[]", NULL, "body");
    s_expect_refused (&config, "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", "c", "model");
    s_expect_refused (&config, "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
                      "c", "model");
    s_expect_refused (&config, "{\"model\": \"bank-desk\", \"messages\": []}", "c", "messages");
    s_expect_refused (&config,
                      "{\"model\": \"bank-desk\", \"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "c",
                      "messages");
    s_expect_refused (&config,
                      "{\"model\": \"bank-desk\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"},"
                      " {\"role\": \"assistant\", \"content\": \"yes?\"}]}",
                      "c", "messages");
    s_expect_refused (&config, "{\"model\": \"bank-desk\", \"messages\": [{\"role\": \"user\", \"content\": \"  \"}]}",
                      "c", "messages[0].content");
    s_expect_refused (&config,
                      "{\"model\": \"bank-desk\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": "
                      "\"text\", \"text\": \"hi\"}]}]}",
                      "c", "messages[0].content");
    s_expect_refused (&config,
                      "{\"model\": \"bank-desk\", \"stream\": 1, \"messages\": [{\"role\": \"user\", \"content\": "
                      "\"hi\"}]}",
                      "c", "stream");
    s_expect_refused (&config,
                      "{\"model\": \"bank-desk\", \"user\": \"cust 1\", \"messages\": [{\"role\": \"user\", "
                      "\"content\": \"hi\"}]}",
                      NULL, "user");
    s_expect_refused (&config, "{\"model\": \"bank-desk\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
                      "a/b", "user");
    s_expect_refused (&config,
                      "{\"model\": \"bank-desk\", \"messages\": [{\"role\": \"user\", \"content\": \"a\\u0000b\"},"
                      " {\"role\": \"user\", \"content\": \"hi\"}]}",
                      "c", "messages[0].content");

    /* a done request becomes a chat.completion */
    json_t *shaped = orchestrator_chat_completion (
        &config, 200,
        json_pack ("{s:s, s:s, s:{s:s, s:s}, s:{s:i, s:i}}", "request_id", "r-1", "status", "done", "reply", "text",
                   "Your card is frozen.", "template", "lost_card_freeze.done", "cost", "prompt_tokens", 12,
                   "completion_tokens", 3));
    assert (strcmp (json_string_value (json_object_get (shaped, "id")), "chatcmpl-r-1") == 0);
    assert (strcmp (json_string_value (json_object_get (shaped, "object")), "chat.completion") == 0);
    json_t *choice = json_array_get (json_object_get (shaped, "choices"), 0);
    assert (strcmp (json_string_value (json_object_get (json_object_get (choice, "message"), "content")),
                    "Your card is frozen.")
            == 0);
    assert (json_integer_value (json_object_get (json_object_get (shaped, "usage"), "total_tokens")) == 15);
    /* ...and, streamed, two chunks (the whole reply, then why it ended) and [DONE] */
    char *events = orchestrator_chat_events (shaped);
    static const char opening[] = "data: {\"id\":\"chatcmpl-r-1\",\"object\":\"chat.completion.chunk\"";
    cv_assert_that (strncmp (events, opening, sizeof opening - 1) == 0, "events: %s", events);
    assert (strstr (events,
                    "\"delta\":{\"role\":\"assistant\",\"content\":\"Your card is frozen.\"},\"finish_reason\":null"));
    assert (strstr (events, "\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12"));
    static const char ending[] = "}\n\ndata: [DONE]\n\n";
    size_t length = strlen (events);
    assert (length > sizeof ending && strcmp (events + length - (sizeof ending - 1), ending) == 0);
    free (events);
    json_decref (shaped);
    /* errors take OpenAI's shape, with the request id when there is one */
    shaped = orchestrator_chat_completion (&config, 502,
                                           json_pack ("{s:s, s:s, s:{s:s}}", "request_id", "r-2", "status", "failed",
                                                      "error", "message", "decision down"));
    json_t *error = json_object_get (shaped, "error");
    assert (strcmp (json_string_value (json_object_get (error, "type")), "server_error") == 0);
    assert (strcmp (json_string_value (json_object_get (error, "message")), "decision down") == 0);
    assert (json_is_null (json_object_get (error, "param")));
    assert (strcmp (json_string_value (json_object_get (json_object_get (shaped, "conveyor"), "request_id")), "r-2")
            == 0);
    json_decref (shaped);
    shaped = orchestrator_chat_completion (
        &config, 503, json_pack ("{s:{s:s, s:s}}", "error", "code", "overloaded", "message", "busy"));
    error = json_object_get (shaped, "error");
    assert (strcmp (json_string_value (json_object_get (error, "code")), "overloaded") == 0);
    assert (!json_object_get (shaped, "conveyor"));
    json_decref (shaped);

    json_t *models = orchestrator_chat_models (&config);
    assert (strcmp (json_string_value (json_object_get (json_array_get (json_object_get (models, "data"), 0), "id")),
                    "bank-desk")
            == 0);
    json_decref (models);
    if (verbose)
        printf ("orchestrator_chat: ok\n");
}
