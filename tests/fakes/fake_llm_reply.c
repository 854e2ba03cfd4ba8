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
