/* The stand-in LLM server's answers, worded as an OpenAI-compatible server words them. */
#include "fake_llm_reply.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum MHD_Result
fake_llm_reply_send (struct MHD_Connection *connection, unsigned status, const char *body, const char *retry_after,
                     unsigned retry_after_ms)
{
    assert (connection && body);
    struct MHD_Response *response =
        MHD_create_response_from_buffer (strlen (body), (void *) body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header (response, "Content-Type", "application/json");
    if (retry_after)
        MHD_add_response_header (response, "Retry-After", retry_after);
    if (retry_after_ms) {
        char value[32];
        snprintf (value, sizeof value, "%u", retry_after_ms);
        MHD_add_response_header (response, "retry-after-ms", value);
    }
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

enum MHD_Result
fake_llm_reply_json (struct MHD_Connection *connection, unsigned status, json_t *document)
{
    char *text = json_dumps (document, JSON_COMPACT);
    json_decref (document);
    enum MHD_Result result = fake_llm_reply_send (connection, status, text ? text : "{}", NULL, 0);
    free (text);
    return result;
}

enum MHD_Result
fake_llm_reply_error (struct MHD_Connection *connection, unsigned status, const char *type, const char *message)
{
    return fake_llm_reply_json (connection, status,
                                json_pack ("{s:{s:s, s:s, s:n}}", "error", "message", message, "type", type, "code"));
}

/* About four bytes a token, as for English text. */
static int
s_estimate_tokens (size_t bytes)
{
    return (int) ((bytes + 3) / 4);
}

bool
fake_llm_reply_wants_stream (const json_t *request)
{
    return json_is_true (json_object_get (request, "stream"));
}

/* Bytes a content chunk holds at most: a few, as a model's tokens come. */
#define CHUNK_BYTES 6

/* One event: "data: " and chunk (taken) as compact JSON, and the blank line. */
static void
s_event (FILE *out, json_t *chunk)
{
    char *text = json_dumps (chunk, JSON_COMPACT);
    json_decref (chunk);
    assert (text);
    fprintf (out, "data: %s\n\n", text);
    free (text);
}

/* A chunk of the stream: the completion's id, model and time, with choices (taken) and usage
   (borrowed, NULL: none). */
static json_t *
s_chunk (const json_t *completion, json_t *choices, const json_t *usage)
{
    json_t *chunk = json_pack ("{s:O?, s:s, s:O?, s:O?, s:o}", "id", json_object_get (completion, "id"), "object",
                               "chat.completion.chunk", "created", json_object_get (completion, "created"), "model",
                               json_object_get (completion, "model"), "choices", choices);
    assert (chunk);
    if (usage)
        json_object_set (chunk, "usage", (json_t *) usage);
    return chunk;
}

char *
fake_llm_reply_events (const json_t *request, const json_t *completion, bool complete)
{
    const json_t *message = json_object_get (json_array_get (json_object_get (completion, "choices"), 0), "message");
    const char *content = json_string_value (json_object_get (message, "content"));
    size_t size = strlen (content);
    /* the chunks' ends: every CHUNK_BYTES bytes, moved back to a character's first byte */
    size_t ends[size / CHUNK_BYTES + 2], count = 0;
    for (size_t at = 0; at < size;) {
        size_t end = at + CHUNK_BYTES < size ? at + CHUNK_BYTES : size;
        while (end < size && ((unsigned char) content[end] & 0xC0) == 0x80) /* a character is at most 4 bytes */
            end--;
        ends[count++] = end;
        at = end;
    }
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream (&text, &text_size);
    s_event (out, s_chunk (completion,
                           json_pack ("[{s:i, s:{s:s, s:s}, s:n}]", "index", 0, "delta", "role", "assistant", "content",
                                      "", "finish_reason"),
                           NULL));
    size_t sent = complete ? count : count / 2;
    for (size_t i = 0, at = 0; i < sent; at = ends[i++])
        s_event (out, s_chunk (completion,
                               json_pack ("[{s:i, s:{s:s#}, s:n}]", "index", 0, "delta", "content", content + at,
                                          (int) (ends[i] - at), "finish_reason"),
                               NULL));
    if (complete) {
        s_event (out, s_chunk (completion,
                               json_pack ("[{s:i, s:{}, s:s}]", "index", 0, "delta", "finish_reason", "stop"), NULL));
        const json_t *usage = json_object_get (completion, "usage");
        if (usage && json_is_true (json_object_get (json_object_get (request, "stream_options"), "include_usage")))
            s_event (out, s_chunk (completion, json_array (), usage));
        fputs ("data: [DONE]\n\n", out);
    }
    fclose (out);
    return text;
}

json_t *
fake_llm_reply_completion (json_t *request, const fake_llm_step_t *step, const char *content, unsigned long serial)
{
    assert (step && content);
    json_t *model = json_object_get (request, "model");
    json_t *answer =
        json_pack ("{s:s, s:I, s:O?, s:[{s:i, s:{s:s, s:s}, s:s}]}", "object", "chat.completion", "created",
                   (json_int_t) time (NULL), "model", json_is_string (model) ? model : NULL, "choices", "index", 0,
                   "message", "role", "assistant", "content", content, "finish_reason", "stop");
    assert (answer);
    if (!step->no_usage) {
        int prompt = step->prompt_tokens, completion = step->completion_tokens;
        if (!prompt && !completion) {
            char *messages = json_dumps (json_object_get (request, "messages"), JSON_COMPACT);
            prompt = s_estimate_tokens (messages ? strlen (messages) : 0);
            completion = s_estimate_tokens (strlen (content));
            free (messages);
        }
        json_object_set_new (answer, "usage",
                             json_pack ("{s:i, s:i, s:i}", "prompt_tokens", prompt, "completion_tokens", completion,
                                        "total_tokens", prompt + completion));
    }
    char id[64];
    snprintf (id, sizeof id, "chatcmpl-fake-%lu", serial);
    json_object_set_new (answer, "id", json_string (id));
    return answer;
}
