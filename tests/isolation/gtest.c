/* The gatherer isolation tests' fixture. */
#include "gtest.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_context.h"
#include "cv_msgpack.h"
#include "cv_template.h"
#include "gatherer_server.h"

gtest_t *
gtest_start_with (const char *url, const char *agent)
{
    return gtest_start_pooled (url, agent, GATHERER_DEFAULT_CONNECTIONS);
}

gtest_t *
gtest_start_pooled (const char *url, const char *agent, const char *connections)
{
    gtest_t *self = cv_calloc (1, sizeof *self);
    cv_error_t err;
    self->log = cv_log_new (GATHERER_SERVICE, "gatherer-isolation", false);
    self->agent =
        agent ? cv_config_parse ("agent.yaml", agent, &err) : cv_config_load ("deploy/config/bank-agent.yaml", &err);
    cv_assert_that (self->agent, "%s", err.message);
    self->settings = cv_settings_new ("gatherer", "test", gatherer_server_settings, gatherer_server_settings_count);
    char *argv[] = {"gatherer", "--database-url", (char *) url, "--database-connections", (char *) connections, NULL};
    assert (cv_settings_load (self->settings, 5, argv, &err) == 0);
    self->args = (cv_launcher_args_t){.agent = self->agent, .settings = self->settings};
    self->config = cv_launcher_worker_config (&gatherer_server_spec, &self->args, self->log);
    self->config.capacity = 2; /* two requests in flight on the one event loop, over its pool */
    self->harness = harness_new ();
    self->worker = harness_start_worker (self->harness, &self->config);
    self->control = harness_control_endpoint (self->worker);
    return self;
}

gtest_t *
gtest_start (const char *url)
{
    return gtest_start_with (url, NULL);
}

void
gtest_stop (gtest_t **self_p)
{
    gtest_t *self = *self_p;
    zactor_destroy (&self->worker);
    harness_destroy (&self->harness);
    zstr_free (&self->control);
    cv_settings_destroy (&self->settings);
    cv_config_destroy (&self->agent);
    cv_log_destroy (&self->log);
    free (self);
    *self_p = NULL;
}

/* A GatherRequest for user and intent (slots: a JSON object or NULL), text as given, in arena. */
cv_envelope_t *
gtest_gather_request (gtest_t *self, cv_arena_t *arena, const char *user, const char *text, const char *intent_name,
                      json_t *slots, int64_t deadline_in_ms)
{
    cv_envelope_t *request = harness_envelope (arena, deadline_in_ms);
    Conveyor__V1__Intent *intent = cv_envelope_intent_new (arena);
    intent->name = (char *) intent_name;
    intent->confidence = 0.97f;
    intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    if (self->low_confidence) {
        intent->method = CONVEYOR__V1__INTENT__METHOD__FALLBACK;
        intent->low_confidence = true;
    }
    if (slots) {
        cv_error_t err;
        size_t size;
        uint8_t *packed = cv_msgpack_pack (slots, &size, &err);
        intent->slots.data = cv_arena_adopt (arena, packed, size);
        intent->slots.len = size;
    }
    Conveyor__V1__GatherRequest *body = cv_envelope_set_gather_request (request, arena);
    body->user_id = (char *) user;
    body->text = (char *) text;
    body->intent = intent;
    body->diagnostic = self->diagnostic;
    return request;
}

/* Sends a GatherRequest (as gtest_gather_request) and returns the reply, which answers this request. */
cv_envelope_t *
gtest_gather (gtest_t *self, const char *user, const char *text, const char *intent_name, json_t *slots,
              int64_t deadline_in_ms)
{
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *request = gtest_gather_request (self, arena, user, text, intent_name, slots, deadline_in_ms);
    cv_envelope_t *reply = harness_request (self->harness, request, 10000);
    assert (reply);
    assert (streq (reply->message_id, request->message_id));
    assert (streq (reply->request_id, request->request_id));
    for (size_t i = 0; i < reply->n_spans; i++) /* the tools' spans are children of the request's */
        assert (streq (reply->spans[i]->parent_span_id, request->span_id));
    cv_arena_destroy (&arena);
    return reply;
}

/* The reply's Evidence as the decision worker sees it (cv_context), after the receiving edge's
   validation; asserts it holds exactly the tools named, in order. */
json_t *
gtest_evidence (const cv_envelope_t *reply, const char *const *tools, size_t count)
{
    cv_error_t err;
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE, "expected evidence, got %s: %s",
                    cv_envelope_body_name (reply->body_case),
                    reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR ? reply->error->message : "");
    assert (
        cv_envelope_validate (reply, CV_BODY (CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE), (uint64_t) zclock_time (), &err)
        == 0);
    assert (reply->evidence->n_results == count);
    for (size_t i = 0; i < count; i++)
        assert (streq (reply->evidence->results[i]->tool, tools[i]));
    json_t *context = cv_context_new ("cust-1", "x", NULL, reply->evidence, NULL, &err);
    assert (context);
    return context;
}

void
gtest_expect_text (const json_t *context, const char *path, const char *expected)
{
    const char *value = json_string_value (cv_template_lookup (context, path));
    cv_assert_that (!(!value || !streq (value, expected)), "%s: expected '%s', got '%s'", path, expected,
                    value ? value : "(none)");
}

void
gtest_expect_rows (const json_t *context, const char *tool, size_t rows)
{
    char path[128];
    snprintf (path, sizeof path, "evidence.%s", tool);
    json_t *value = cv_template_lookup (context, path);
    cv_assert_that (!(!json_is_array (value) || json_array_size (value) != rows), "%s: expected %zu rows", path, rows);
}

void
gtest_expect_probe (gtest_t *self, bool ok, const char *detail)
{
    cv_envelope_t *reply = harness_probe (self->control, 10000);
    assert (reply && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_PROBE_RESULT);
    Conveyor__V1__ProbeResult *result = reply->probe_result;
    cv_assert_that (!(result->ok != ok || !strstr (result->detail, detail)),
                    "probe: expected ok=%d '%s', got ok=%d '%s'", ok, detail, result->ok, result->detail);
    assert (streq (result->service, GATHERER_SERVICE));
    assert (streq (result->instance, "test-1"));
    cv_envelope_destroy (&reply);
}
