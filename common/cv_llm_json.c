/* The chat-completions wire format: the request body sent, the answer read strictly, what a
   failed answer says, and JSON inside an answer's content. No I/O: cv_llm sends and receives. */
#include "cv_llm_json.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_budget.h"
#include "cv_buffer.h"

const char *
cv_llm_role_name (cv_llm_role_t role)
{
    switch (role) {
    case CV_LLM_SYSTEM:
        return "system";
    case CV_LLM_USER:
        return "user";
    case CV_LLM_ASSISTANT:
        return "assistant";
    }
    return "user";
}

cv_llm_prices_t
cv_llm_prices_of (const cv_llm_config_t *config)
{
    assert (config);
    return (cv_llm_prices_t){.prompt_per_1k = cv_budget_micros (config->price_prompt_per_1k),
                             .completion_per_1k = cv_budget_micros (config->price_completion_per_1k)};
}

uint64_t
cv_llm_prices_cost (const cv_llm_prices_t *prices, uint64_t prompt_tokens, uint64_t completion_tokens)
{
    assert (prices);
    return cv_budget_add (cv_budget_token_cost (prompt_tokens, prices->prompt_per_1k),
                          cv_budget_token_cost (completion_tokens, prices->completion_per_1k));
}

void
cv_llm_reply_reset (cv_llm_reply_t *reply)
{
    assert (reply);
    free (reply->content);
    memset (reply, 0, sizeof *reply);
}

char *
cv_llm_json_request (const cv_llm_config_t *config, const char *model, const cv_llm_message_t *messages, size_t count,
                     const json_t *response_format, cv_error_t *err)
{
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++) {
        assert (messages[i].content);
        json_t *content = json_string (messages[i].content);
        if (!content) {
            json_decref (list);
            cv_error_set (err, CV_ERR_INVALID, "messages", "llm: message %zu is not valid UTF-8", i + 1);
            return NULL;
        }
        const char *role = cv_llm_role_name (messages[i].role);
        json_array_append_new (list, json_pack ("{s:s, s:o}", "role", role, "content", content));
    }
    json_t *request = json_pack ("{s:s, s:o, s:f, s:I}", "model", model, "messages", list, "temperature",
                                 config->temperature, "max_tokens", (json_int_t) config->max_tokens);
    assert (request);
    if (config->stream) {
        json_object_set_new (request, "stream", json_true ());
        json_object_set_new (request, "stream_options", json_pack ("{s:b}", "include_usage", true));
    }
    if (response_format)
        json_object_set_new (request, "response_format", json_deep_copy (response_format));
    else if (config->json_object)
        json_object_set_new (request, "response_format", json_pack ("{s:s}", "type", "json_object"));
    char *text = json_dumps (request, JSON_COMPACT | JSON_REAL_PRECISION (6));
    json_decref (request);
    assert (text);
    return text;
}

json_t *
cv_llm_json_schema_format (const char *name, const json_t *schema)
{
    assert (name && schema);
    return json_pack ("{s:s, s:{s:s, s:O, s:b}}", "type", "json_schema", "json_schema", "name", name, "schema", schema,
                      "strict", true);
}

/* A short, log-safe excerpt of text: printable ASCII, others as '?'. */
static void
s_excerpt (const char *text, size_t size, char *out, size_t out_size)
{
    size_t used = 0, i = 0;
    for (; i < size && used + 4 < out_size; i++) {
        unsigned char c = (unsigned char) text[i];
        out[used++] = c >= ' ' && c < 0x7f ? (char) c : c == '\n' || c == '\t' ? ' ' : '?';
    }
    if (i < size) /* cut short: say so */
        memcpy (out + used, "...", 4);
    else
        out[used] = '\0';
}

void
cv_llm_json_error_detail (const char *body, size_t size, char *out, size_t out_size)
{
    out[0] = '\0';
    if (!size)
        return;
    json_t *root = json_loadb (body, size, 0, NULL);
    json_t *error = json_object_get (root, "error");
    const char *message = NULL;
    if (json_is_string (error))
        message = json_string_value (error);
    else if (json_is_string (json_object_get (error, "message")))
        message = json_string_value (json_object_get (error, "message"));
    else if (json_is_string (json_object_get (root, "message")))
        message = json_string_value (json_object_get (root, "message"));
    else if (json_is_string (json_object_get (root, "detail")))
        message = json_string_value (json_object_get (root, "detail"));
    if (message)
        s_excerpt (message, strlen (message), out, out_size);
    else
        s_excerpt (body, size, out, out_size);
    json_decref (root);
}

/* usage's count name into *out, and *given true, when it is there. */
static int
s_token_count (json_t *usage, const char *name, long *out, bool *given, cv_error_t *err)
{
    json_t *value = json_object_get (usage, name);
    *given = value != NULL;
    if (!value)
        return 0;
    if (!json_is_integer (value) || json_integer_value (value) < 0)
        return cv_error_set (err, CV_ERR_MALFORMED, name, "usage.%s is not a whole number", name);
    *out = (long) json_integer_value (value);
    return 0;
}

int
cv_llm_json_answer (const cv_llm_prices_t *prices, const char *body, size_t size, cv_llm_reply_t *reply,
                    cv_error_t *err)
{
    assert (prices && reply);
    json_error_t error;
    json_t *root = json_loadb (body ? body : "", size, JSON_REJECT_DUPLICATES, &error);
    if (!json_is_object (root)) {
        char excerpt[64];
        s_excerpt (body ? body : "", size, excerpt, sizeof excerpt);
        cv_error_set (err, CV_ERR_MALFORMED, "body", "the answer is not a JSON object (%s): \"%s\"",
                      root ? "another JSON value" : error.text, excerpt);
        json_decref (root);
        return -1;
    }
    json_t *choices = json_object_get (root, "choices");
    json_t *message = json_object_get (json_array_get (choices, 0), "message");
    json_t *content = json_object_get (message, "content");
    json_t *finish = json_object_get (json_array_get (choices, 0), "finish_reason");
    json_t *usage = json_object_get (root, "usage");
    int rc = 0;
    if (!json_is_array (choices) || json_array_size (choices) == 0)
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices", "the answer has no choices");
    else if (!json_is_object (message))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices[0].message", "the answer's first choice has no message");
    else if (!json_is_string (content))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices[0].message.content",
                           "the answer's content is %s, not a string", content ? "another JSON value" : "missing");
    else if (usage && !json_is_null (usage) && !json_is_object (usage))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "usage", "the answer's usage is not an object");
    long prompt_tokens = 0, completion_tokens = 0;
    bool prompt_given = false, completion_given = false;
    if (rc == 0 && json_is_object (usage))
        rc = s_token_count (usage, "prompt_tokens", &prompt_tokens, &prompt_given, err)
                     || s_token_count (usage, "completion_tokens", &completion_tokens, &completion_given, err)
                 ? -1
                 : 0;
    if (rc == 0) {
        size_t length = json_string_length (content);
        reply->content = cv_malloc (length + 1);
        memcpy (reply->content, json_string_value (content), length + 1);
        reply->prompt_tokens = prompt_tokens;
        reply->completion_tokens = completion_tokens;
        /* a count left out could be any number: only both make the cost known */
        reply->has_usage = prompt_given && completion_given;
        reply->cost_micros =
            reply->has_usage ? cv_llm_prices_cost (prices, (uint64_t) prompt_tokens, (uint64_t) completion_tokens) : 0;
        if (json_is_string (finish))
            snprintf (reply->finish_reason, sizeof reply->finish_reason, "%s", json_string_value (finish));
    }
    json_decref (root);
    return rc;
}

/* A streamed answer as it is read: what its chunks said so far. */
typedef struct {
    cv_buffer_t content;
    char finish_reason[32];
    long prompt_tokens, completion_tokens;
    bool prompt_given, completion_given;
    bool done;    /* "data: [DONE]" came */
    bool choices; /* a chunk had a choice */
    size_t events;
} s_stream_t;

/* One event's data (size bytes, NUL-terminated) into stream. */
static int
s_stream_event (s_stream_t *stream, const char *data, size_t size, cv_error_t *err)
{
    stream->events++;
    if (strcmp (data, "[DONE]") == 0) {
        stream->done = true;
        return 0;
    }
    json_error_t error;
    json_t *chunk = json_loadb (data, size, JSON_REJECT_DUPLICATES, &error);
    int rc = 0;
    json_t *failure = json_object_get (chunk, "error");
    json_t *choices = json_object_get (chunk, "choices");
    json_t *first = json_array_get (choices, 0);
    json_t *content = json_object_get (json_object_get (first, "delta"), "content");
    json_t *finish = json_object_get (first, "finish_reason");
    json_t *usage = json_object_get (chunk, "usage");
    if (!json_is_object (chunk)) {
        char excerpt[64];
        s_excerpt (data, size, excerpt, sizeof excerpt);
        rc = cv_error_set (err, CV_ERR_MALFORMED, "body", "the stream's event %zu is not a JSON object (%s): \"%s\"",
                           stream->events, chunk ? "another JSON value" : error.text, excerpt);
    } else if (failure) {
        char detail[160];
        cv_llm_json_error_detail (data, size, detail, sizeof detail);
        rc = cv_error_set (err, CV_ERR_MALFORMED, "error", "the stream broke off with an error: %s", detail);
    } else if (choices && !json_is_array (choices))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices", "the stream's event %zu has choices that are no list",
                           stream->events);
    else if (content && !json_is_string (content) && !json_is_null (content))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices[0].delta.content",
                           "the stream's event %zu has content that is not a string", stream->events);
    else if (usage && !json_is_null (usage) && !json_is_object (usage))
        rc = cv_error_set (err, CV_ERR_MALFORMED, "usage", "the stream's usage is not an object");
    else if (json_is_object (usage)
             && (s_token_count (usage, "prompt_tokens", &stream->prompt_tokens, &stream->prompt_given, err)
                 || s_token_count (usage, "completion_tokens", &stream->completion_tokens, &stream->completion_given,
                                   err)))
        rc = -1;
    else {
        if (json_is_string (content)
            && !cv_buffer_append (&stream->content, json_string_value (content), json_string_length (content),
                                  SIZE_MAX))
            rc = cv_error_set (err, CV_ERR_MALFORMED, "body", "the stream's content does not fit in memory");
        if (json_is_string (finish))
            snprintf (stream->finish_reason, sizeof stream->finish_reason, "%s", json_string_value (finish));
        stream->choices |= json_is_object (first);
    }
    json_decref (chunk);
    return rc;
}

int
cv_llm_json_stream_answer (const cv_llm_prices_t *prices, const char *body, size_t size, cv_llm_reply_t *reply,
                           cv_error_t *err)
{
    assert (prices && reply);
    s_stream_t stream = {0};
    cv_buffer_t data = {0}; /* the event being read: its data lines, joined by LF */
    bool has_data = false;
    int rc = 0;
    size_t at = 0;
    while (rc == 0 && !stream.done && at <= size) {
        /* the next line, ended by LF, CRLF, CR or the end of the body */
        size_t end = at;
        while (end < size && body[end] != '\n' && body[end] != '\r')
            end++;
        const char *line = body + at;
        size_t length = end - at;
        bool last = end == size;
        at = end + (end < size && body[end] == '\r' && end + 1 < size && body[end + 1] == '\n' ? 2 : 1);
        if (length == 0) { /* a blank line ends an event */
            if (has_data)
                rc = s_stream_event (&stream, data.data, data.size, err);
            cv_buffer_clear (&data);
            has_data = false;
        } else if (length >= 5 && memcmp (line, "data:", 5) == 0) {
            size_t skip = length > 5 && line[5] == ' ' ? 6 : 5;
            if ((has_data && !cv_buffer_append (&data, "\n", 1, SIZE_MAX))
                || !cv_buffer_append (&data, line + skip, length - skip, SIZE_MAX))
                rc = cv_error_set (err, CV_ERR_MALFORMED, "body", "the stream's event does not fit in memory");
            has_data = true;
        } /* a comment (":..."), or a field this reader has no use for (event, id, retry) */
        if (last && rc == 0 && has_data) /* the body ended inside an event: take what it said */
            rc = s_stream_event (&stream, data.data, data.size, err);
        if (last)
            break;
    }
    if (rc == 0 && !stream.done)
        rc = cv_error_set (err, CV_ERR_MALFORMED, "body",
                           "the stream ended after %zu events, before data: [DONE]: the answer is incomplete",
                           stream.events);
    else if (rc == 0 && !stream.choices)
        rc = cv_error_set (err, CV_ERR_MALFORMED, "choices", "the stream has no choices");
    if (rc == 0) {
        reply->content = cv_strndup (stream.content.data ? stream.content.data : "", stream.content.size);
        reply->prompt_tokens = stream.prompt_tokens;
        reply->completion_tokens = stream.completion_tokens;
        reply->has_usage = stream.prompt_given && stream.completion_given;
        reply->cost_micros = reply->has_usage ? cv_llm_prices_cost (prices, (uint64_t) stream.prompt_tokens,
                                                                    (uint64_t) stream.completion_tokens)
                                              : 0;
        snprintf (reply->finish_reason, sizeof reply->finish_reason, "%s", stream.finish_reason);
    }
    cv_buffer_release (&data);
    cv_buffer_release (&stream.content);
    return rc;
}

json_t *
cv_llm_json_content (const cv_llm_reply_t *reply, cv_error_t *err)
{
    assert (reply);
    const char *content = reply->content ? reply->content : "";
    const char *start = content;
    const char *end = content + strlen (content);
    /* Models asked for JSON often wrap it in a Markdown fence, sometimes with words around it. */
    const char *fence = strstr (content, "```");
    if (fence) {
        const char *inside = strchr (fence, '\n');
        const char *closing = inside ? strstr (inside, "```") : NULL;
        if (inside && closing) {
            start = inside + 1;
            end = closing;
        }
    }
    while (start < end && isspace ((unsigned char) *start))
        start++;
    while (end > start && isspace ((unsigned char) end[-1]))
        end--;
    json_error_t error;
    json_t *value = json_loadb (start, (size_t) (end - start), JSON_REJECT_DUPLICATES, &error);
    if (json_is_object (value))
        return value;
    char excerpt[64];
    s_excerpt (content, strlen (content), excerpt, sizeof excerpt);
    if (value)
        cv_error_set (err, CV_ERR_MALFORMED, "content", "the LLM answered JSON that is not an object: \"%s\"", excerpt);
    else if (start == end)
        cv_error_set (err, CV_ERR_MALFORMED, "content", "the LLM answered no JSON (empty content)");
    else
        cv_error_set (err, CV_ERR_MALFORMED, "content", "the LLM's answer is not JSON (%s): \"%s\"", error.text,
                      excerpt);
    json_decref (value);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
   Self-test */

/* A streamed answer: its deltas in order, its finish reason and usage, through LF, CRLF and CR
   line ends, comments, other fields, a data line without its space and one split over two. */
static void
s_test_stream (const cv_llm_prices_t *prices)
{
    cv_error_t err;
    cv_llm_reply_t reply;
    memset (&reply, 0, sizeof reply);
    const char *stream =
        ": keep-alive\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
        "event: message\r\nid: 2\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Your card \"}}]}\r\n\r\n"
        "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"is on \\u00e9 way.\"}}]}\r\r"
        "data: {\"choices\":[{\"index\":0,\"delta\":\n"
        "data: {},\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500}}\n\n"
        "data: [DONE]\n\n";
    cv_assert_that (cv_llm_json_stream_answer (prices, stream, strlen (stream), &reply, &err) == 0, "%s", err.message);
    assert (strcmp (reply.content, "Your card is on \xc3\xa9 way.") == 0);
    assert (strcmp (reply.finish_reason, "stop") == 0 && reply.has_usage && reply.prompt_tokens == 1000);
    assert (reply.cost_micros == 4000000);
    cv_llm_reply_reset (&reply);
    /* [DONE] as the body's last line, without its blank line; no usage: the cost is unknown */
    const char *bare =
        "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]";
    assert (cv_llm_json_stream_answer (prices, bare, strlen (bare), &reply, &err) == 0);
    assert (strcmp (reply.content, "ok") == 0 && !reply.has_usage && reply.cost_micros == 0);
    cv_llm_reply_reset (&reply);

    struct {
        const char *body;
        const char *says;
    } broken[] = {
        {"data: {\"choices\":[{\"delta\":{\"content\":\"Your card\"}}]}\n\n", "before data: [DONE]"},
        {"", "after 0 events, before data: [DONE]"},
        {"data: [DONE]\n\n", "no choices"},
        {"data: not json\n\ndata: [DONE]\n\n", "event 1 is not a JSON object"},
        {"data: {\"error\":{\"message\":\"overloaded\"}}\n\n", "broke off with an error: overloaded"},
        {"data: {\"choices\":[{\"delta\":{\"content\":7}}]}\n\ndata: [DONE]\n\n", "content that is not a string"},
        {"data: {\"choices\":{}}\n\ndata: [DONE]\n\n", "choices that are no list"},
        {"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":-1}}\n\ndata: [DONE]\n\n", "not a whole number"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        int rc = cv_llm_json_stream_answer (prices, broken[i].body, strlen (broken[i].body), &reply, &err);
        cv_assert_that (rc == -1 && err.code == CV_ERR_MALFORMED && strstr (err.message, broken[i].says)
                            && !reply.content,
                        "%s: %s", broken[i].body, rc ? err.message : "accepted");
    }
}

void
cv_llm_json_test (bool verbose)
{
    cv_error_t err;
    cv_llm_config_t config;
    cv_llm_config_defaults (&config);
    snprintf (config.base_url, sizeof config.base_url, "http://127.0.0.1:1/v1/");
    snprintf (config.model, sizeof config.model, "m");
    config.price_prompt_per_1k = 2.0;
    config.price_completion_per_1k = 4.0;
    config.json_object = true;

    /* The request body. */
    cv_llm_message_t messages[] = {{CV_LLM_SYSTEM, "Answer in JSON."}, {CV_LLM_USER, "caf\xc3\xa9?"}};
    char *body = cv_llm_json_request (&config, "m", messages, 2, NULL, &err);
    json_t *sent = json_loads (body, 0, NULL);
    free (body);
    json_t *expected =
        json_pack ("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:f, s:i, s:{s:s}}", "model", "m", "messages", "role", "system",
                   "content", "Answer in JSON.", "role", "user", "content", "caf\xc3\xa9?", "temperature", 0.0,
                   "max_tokens", 256, "response_format", "type", "json_object");
    assert (json_equal (sent, expected));
    json_decref (sent);
    json_decref (expected);
    cv_llm_message_t broken[] = {{CV_LLM_USER, "\xff\xfe"}};
    assert (!cv_llm_json_request (&config, "m", broken, 1, NULL, &err));
    assert (err.code == CV_ERR_INVALID && strstr (err.message, "UTF-8"));
    /* ...and with a schema, whose response_format replaces JSON mode's */
    json_t *schema = json_pack ("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "intent", "type", "string");
    json_t *format = cv_llm_json_schema_format ("intent", schema);
    body = cv_llm_json_request (&config, "m", messages, 2, format, &err);
    sent = json_loads (body, 0, NULL);
    free (body);
    json_t *asked = json_object_get (sent, "response_format");
    assert (strcmp (json_string_value (json_object_get (asked, "type")), "json_schema") == 0);
    assert (json_equal (json_object_get (json_object_get (asked, "json_schema"), "schema"), schema));
    assert (json_is_true (json_object_get (json_object_get (asked, "json_schema"), "strict")));
    json_decref (sent);
    json_decref (format);
    json_decref (schema);

    /* Prices in micros, and what tokens cost at them: a part of a micro is a whole one. */
    cv_llm_prices_t prices = cv_llm_prices_of (&config);
    assert (prices.prompt_per_1k == 2000000 && prices.completion_per_1k == 4000000);
    assert (cv_llm_prices_cost (&prices, 1000, 500) == 4000000 && cv_llm_prices_cost (&prices, 0, 0) == 0);
    cv_llm_config_t cheap = config;
    cheap.price_prompt_per_1k = 0.0015; /* 1.5 micros a token */
    cheap.price_completion_per_1k = 0;
    cv_llm_prices_t cheap_prices = cv_llm_prices_of (&cheap);
    assert (cheap_prices.prompt_per_1k == 1500 && cheap_prices.completion_per_1k == 0);
    assert (cv_llm_prices_cost (&cheap_prices, 1, 1000000) == 2 && cv_llm_prices_cost (&cheap_prices, 2, 0) == 3);
    assert (cv_llm_prices_cost (&prices, UINT64_MAX, 1) == UINT64_MAX);

    /* Answers, good and malformed. */
    cv_llm_reply_t reply = {0};
    const char *good = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
                       "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500}}";
    assert (cv_llm_json_answer (&prices, good, strlen (good), &reply, &err) == 0);
    assert (strcmp (reply.content, "hi") == 0 && strcmp (reply.finish_reason, "stop") == 0);
    assert (reply.has_usage && reply.prompt_tokens == 1000 && reply.completion_tokens == 500);
    assert (reply.cost_micros == 2000000 + 2000000);
    cv_llm_reply_reset (&reply);
    const char *odd = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}],\"usage\":{\"prompt_tokens\":1,"
                      "\"completion_tokens\":0}}";
    assert (cv_llm_json_answer (&cheap_prices, odd, strlen (odd), &reply, &err) == 0);
    assert (reply.has_usage && reply.cost_micros == 2); /* 1.5 micros, rounded up */
    cv_llm_reply_reset (&reply);
    /* No usage, or usage without both counts: the cost is unknown, left to the caller's worst case. */
    const char *no_usage = "{\"choices\":[{\"message\":{\"content\":\"\"}}],\"usage\":null}";
    assert (cv_llm_json_answer (&prices, no_usage, strlen (no_usage), &reply, &err) == 0);
    assert (!reply.has_usage && reply.cost_micros == 0 && strcmp (reply.content, "") == 0);
    cv_llm_reply_reset (&reply);
    const char *half_usage = "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":7}}";
    assert (cv_llm_json_answer (&prices, half_usage, strlen (half_usage), &reply, &err) == 0);
    assert (!reply.has_usage && reply.prompt_tokens == 7 && reply.completion_tokens == 0 && reply.cost_micros == 0);
    cv_llm_reply_reset (&reply);
    struct {
        const char *body;
        const char *field;
    } malformed[] = {
        {"", "body"},
        {"<html>502 Bad Gateway</html>", "body"},
        {"[1, 2]", "body"},
        {"{\"id\":\"x\",\"object\":\"chat.completion\"}", "choices"},
        {"{\"choices\":[]}", "choices"},
        {"{\"choices\":[{\"text\":\"legacy\"}]}", "choices[0].message"},
        {"{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]}}]}", "choices[0].message.content"},
        {"{\"choices\":[{\"message\":{\"content\":42}}]}", "choices[0].message.content"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":\"7\"}}", "prompt_tokens"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":-1}}",
         "completion_tokens"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":7}", "usage"},
        {"{\"choices\":[{\"message\":{\"content\":\"x\"}}]} trailing", "body"},
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        assert (cv_llm_json_answer (&prices, malformed[i].body, strlen (malformed[i].body), &reply, &err) == -1);
        assert (err.code == CV_ERR_MALFORMED);
        assert (strcmp (err.field, malformed[i].field) == 0);
        /* nothing of a refused answer is kept: not its content, not the counts read before the fault */
        assert (!reply.content && reply.prompt_tokens == 0 && reply.completion_tokens == 0 && !reply.has_usage);
        cv_llm_reply_reset (&reply);
    }

    /* What a failed answer says. */
    char detail[160];
    const char *openai = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}";
    cv_llm_json_error_detail (openai, strlen (openai), detail, sizeof detail);
    assert (strcmp (detail, "Rate limit reached") == 0);
    cv_llm_json_error_detail ("upstream\nreset\x01", 15, detail, sizeof detail);
    assert (strcmp (detail, "upstream reset?") == 0);
    char long_text[1000];
    memset (long_text, 'x', sizeof long_text);
    cv_llm_json_error_detail (long_text, sizeof long_text, detail, sizeof detail);
    assert (strlen (detail) < sizeof detail && strcmp (detail + strlen (detail) - 3, "...") == 0);

    /* JSON inside the content. */
    struct {
        const char *content;
        const char *intent; /* NULL: must fail */
    } cases[] = {
        {"{\"intent\": \"card_arrival\"}", "card_arrival"},
        {"  \n{\"intent\":\"a\"}\n", "a"},
        {"```json\n{\"intent\": \"b\"}\n```", "b"},
        {"```\n{\"intent\": \"c\"}\n```\n", "c"},
        {"Here you are:\n```json\n{\"intent\": \"d\"}\n```\nAnything else?", "d"},
        {"", NULL},
        {"I think it is card_arrival.", NULL},
        {"[\"card_arrival\"]", NULL},
        {"{\"intent\": \"x\"} and more", NULL},
        {"{\"intent\": \"x\", \"intent\": \"y\"}", NULL},
        {"```json\n{\"intent\": \n```", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply.content = cv_strdup (cases[i].content);
        json_t *value = cv_llm_json_content (&reply, &err);
        if (cases[i].intent) {
            assert (value);
            assert (strcmp (json_string_value (json_object_get (value, "intent")), cases[i].intent) == 0);
        } else {
            assert (!value);
            assert (err.code == CV_ERR_MALFORMED && strcmp (err.field, "content") == 0);
        }
        json_decref (value);
        cv_llm_reply_reset (&reply);
    }
    /* No content at all, as after a failed call. */
    assert (!cv_llm_json_content (&reply, &err));
    s_test_stream (&prices);
    if (verbose)
        printf ("cv_llm_json: ok\n");
}
