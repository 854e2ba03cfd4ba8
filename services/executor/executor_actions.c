/* The agent file's `actions`: how each kind of action is performed. */
#include "executor_actions.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_backoff_config.h"
#include "cv_assert.h"

#define PATH_BYTES (CV_NAME_MAX_BYTES + 48)

struct _executor_actions_t {
    executor_action_t *kinds;
    size_t count;
};

static const char *const s_action_keys[] = {"query", "params", "timeout_ms", "retries", NULL};

/* The paths an action reads: the request's user and id, and the action's own fields. */
static bool
s_known_root (const char *path)
{
    return strcmp (path, "user_id") == 0 || strcmp (path, "request_id") == 0 || strcmp (path, "action.id") == 0
           || strcmp (path, "action.kind") == 0 || strcmp (path, "action.key") == 0
           || strncmp (path, "action.params.", strlen ("action.params.")) == 0;
}

static int
s_retries (const cv_config_t *agent, cv_node_t *map, const char *path, cv_backoff_t *out, cv_error_t *err)
{
    /* an action is retried by default: the idempotency key makes a retry a replay */
    static const cv_backoff_t defaults = {.max_attempts = EXECUTOR_RETRIES_ATTEMPTS_DEFAULT,
                                          .base_ms = EXECUTOR_RETRIES_BASE_MS_DEFAULT,
                                          .cap_ms = EXECUTOR_RETRIES_CAP_MS_DEFAULT};
    return cv_backoff_config_parse (agent, map, path, &defaults, &defaults, out, err);
}

static int
s_parse_kind (const cv_config_t *agent, const char *kind, cv_node_t *map, executor_action_t *out, cv_error_t *err)
{
    char path[PATH_BYTES];
    snprintf (path, sizeof path, "actions.%s", kind);
    if (!cv_name_valid (kind))
        return cv_config_fail (agent, map, path, err, "an action kind is 1..%d of " CV_NAME_CHARS, CV_NAME_MAX_BYTES);
    if (!cv_node_is_map (map))
        return cv_config_fail (agent, map, path, err, "must be a map of query, params, timeout_ms, retries");
    const char *query = NULL;
    long timeout_ms = EXECUTOR_TIMEOUT_MS_DEFAULT;
    if (cv_config_known_keys (agent, map, path, s_action_keys, err)
        || cv_config_string (agent, map, "query", path, true, &query, err)
        || cv_config_int (agent, map, "timeout_ms", path, 1, EXECUTOR_TIMEOUT_MS_MAX, &timeout_ms, err)
        || s_retries (agent, map, path, &out->retries, err))
        return -1;
    if (cv_params_parse (agent, map, path, false, &out->params, err))
        return -1;
    out->kind = cv_strdup (kind);
    out->query = cv_strdup (query);
    out->timeout_ms = (unsigned) timeout_ms;
    for (size_t i = 0; i < out->params.count; i++)
        if (!s_known_root (out->params.paths[i])) {
            char params_path[PATH_BYTES];
            snprintf (params_path, sizeof params_path, "%s.params", path);
            return cv_config_fail (agent, cv_params_item (out->params.node, i), params_path, err,
                                   "'%s' is not user_id, request_id, action.id, action.kind, action.key or "
                                   "action.params.NAME",
                                   out->params.paths[i]);
        }
    /* a retry (every action has them: a lost connection may hide a change made) is safe only when
       the bank sees the same key again */
    bool keyed = false;
    for (size_t i = 0; i < out->params.count; i++)
        keyed = keyed || strcmp (out->params.paths[i], "action.key") == 0;
    if (!keyed) {
        char params_path[PATH_BYTES];
        snprintf (params_path, sizeof params_path, "%s.params", path);
        return cv_config_fail (agent, out->params.node ? out->params.node : map, params_path, err,
                               "must pass action.key, the idempotency key that makes a retry a replay");
    }
    return 0;
}

executor_actions_t *
executor_actions_new (const cv_config_t *agent, cv_error_t *err)
{
    assert (agent);
    executor_actions_t *self = cv_calloc (1, sizeof *self);
    cv_node_t *section = cv_node_get (cv_config_root ((cv_config_t *) agent), "actions");
    if (!section)
        return self;
    if (!cv_node_is_map (section)) {
        cv_config_fail (agent, section, "actions", err, "must be a map of action kind to how it is performed");
        executor_actions_destroy (&self);
        return NULL;
    }
    size_t count = cv_node_count (section);
    if (count > EXECUTOR_MAX_KINDS) {
        cv_config_fail (agent, section, "actions", err, "%zu kinds, over the limit of %d", count, EXECUTOR_MAX_KINDS);
        executor_actions_destroy (&self);
        return NULL;
    }
    self->kinds = cv_calloc (count ? count : 1, sizeof *self->kinds);
    for (size_t i = 0; i < count; i++) {
        const char *kind = cv_node_key (section, i);
        self->count = i + 1; /* so that a failure frees what this one kept */
        if (s_parse_kind (agent, kind ? kind : "", cv_node_value (section, i), &self->kinds[i], err)) {
            executor_actions_destroy (&self);
            return NULL;
        }
        self->kinds[i].params.node = NULL; /* the document's: gone once the launcher frees it */
    }
    return self;
}

void
executor_actions_destroy (executor_actions_t **self_p)
{
    assert (self_p);
    executor_actions_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->kinds[i].kind);
        free (self->kinds[i].query);
        if (self->kinds[i].params.paths)
            cv_params_free (&self->kinds[i].params);
    }
    free (self->kinds);
    free (self);
    *self_p = NULL;
}

size_t
executor_actions_count (const executor_actions_t *self)
{
    assert (self);
    return self->count;
}

const executor_action_t *
executor_actions_find (const executor_actions_t *self, const char *kind)
{
    assert (self && kind);
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->kinds[i].kind, kind) == 0)
            return &self->kinds[i];
    return NULL;
}

json_t *
executor_actions_context (const char *request_id, const char *user_id, const Conveyor__V1__Action *action,
                          const json_t *params)
{
    assert (request_id && user_id && action);
    char *key = cv_asprintf ("%s:%s", request_id, action->id);
    json_t *own_params = params ? json_incref ((json_t *) params) : json_object ();
    json_t *context = json_pack ("{s:s, s:s, s:{s:s, s:s, s:s, s:o}}", "user_id", user_id, "request_id", request_id,
                                 "action", "id", action->id, "kind", action->kind, "key", key, "params", own_params);
    free (key);
    assert (context);
    return context;
}

char **
executor_actions_texts (const executor_action_t *action, const json_t *context)
{
    assert (action && context);
    char **texts = cv_calloc (action->params.count ? action->params.count : 1, sizeof *texts);
    for (size_t i = 0; i < action->params.count; i++)
        texts[i] = cv_params_text (context, action->params.paths[i]);
    return texts;
}

void
executor_actions_texts_free (char **texts, size_t count)
{
    for (size_t i = 0; texts && i < count; i++)
        free (texts[i]);
    free (texts);
}

/*  --------------------------------------------------------------------------
    Self-test */

static void
s_expect_failure (const char *text, const char *expected)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, &err);
    assert (agent);
    executor_actions_t *actions = executor_actions_new (agent, &err);
    cv_assert_that (!actions && strstr (err.message, expected), "expected '%s', got '%s'", expected,
                    actions ? "success" : err.message);
    cv_config_destroy (&agent);
}

void
executor_actions_test (bool verbose)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml",
                                          "actions:\n"
                                          "  freeze_card:\n"
                                          "    query: SELECT bank.freeze_card($1, $2, $3) AS outcome\n"
                                          "    params: [action.key, user_id, action.params.card_id]\n"
                                          "    timeout_ms: 1500\n"
                                          "    retries: {max_attempts: 4, base_ms: 20, cap_ms: 200}\n"
                                          "  ping: {query: 'SELECT $1::text', params: action.key}\n",
                                          &err);
    assert (agent);
    executor_actions_t *actions = executor_actions_new (agent, &err);
    cv_config_destroy (&agent); /* nothing of the document is kept */
    assert (actions && executor_actions_count (actions) == 2);
    const executor_action_t *freeze = executor_actions_find (actions, "freeze_card");
    assert (freeze && freeze->timeout_ms == 1500 && freeze->params.count == 3);
    assert (freeze->retries.max_attempts == 4 && freeze->retries.base_ms == 20 && freeze->retries.cap_ms == 200);
    const executor_action_t *ping = executor_actions_find (actions, "ping");
    assert (ping && ping->timeout_ms == EXECUTOR_TIMEOUT_MS_DEFAULT && ping->params.count == 1);
    assert (ping->retries.max_attempts == EXECUTOR_RETRIES_ATTEMPTS_DEFAULT);
    assert (!executor_actions_find (actions, "launch_rocket"));

    /* the context: the key is the request's id and the action's */
    Conveyor__V1__Action action = CONVEYOR__V1__ACTION__INIT;
    action.id = "p.1";
    action.kind = "freeze_card";
    json_t *params = json_pack ("{s:s}", "card_id", "card-1-1");
    json_t *context = executor_actions_context ("req-7", "cust-1", &action, params);
    char **texts = executor_actions_texts (freeze, context);
    assert (streq (texts[0], "req-7:p.1") && streq (texts[1], "cust-1") && streq (texts[2], "card-1-1"));
    executor_actions_texts_free (texts, freeze->params.count);
    json_decref (context);
    /* a missing param is SQL NULL */
    context = executor_actions_context ("req-7", "cust-1", &action, NULL);
    texts = executor_actions_texts (freeze, context);
    assert (streq (texts[0], "req-7:p.1") && !texts[2]);
    executor_actions_texts_free (texts, freeze->params.count);
    json_decref (context);
    json_decref (params);
    executor_actions_destroy (&actions);
    assert (!actions);
    executor_actions_destroy (&actions);

    /* no actions section: no kinds */
    agent = cv_config_parse ("agent.yaml", "intents: {}\n", &err);
    actions = executor_actions_new (agent, &err);
    assert (actions && executor_actions_count (actions) == 0);
    executor_actions_destroy (&actions);
    cv_config_destroy (&agent);

    /* mistakes, with file, line and key */
    s_expect_failure ("actions: [freeze_card]\n", "agent.yaml:1: actions: must be a map");
    s_expect_failure ("actions:\n  freeze_card: {params: [user_id]}\n", "agent.yaml:2: actions.freeze_card");
    s_expect_failure ("actions:\n  freeze_card: {query: ''}\n", "actions.freeze_card.query: must not be empty");
    s_expect_failure ("actions:\n  freeze_card: {query: x, timeout: 5}\n", "agent.yaml:2: actions.freeze_card");
    s_expect_failure ("actions:\n  freeze_card: {query: x, timeout_ms: 0}\n", "actions.freeze_card.timeout_ms");
    s_expect_failure ("actions:\n  freeze_card:\n    query: x\n    retries: {max_attempts: 11}\n",
                      "agent.yaml:4: actions.freeze_card.retries.max_attempts");
    s_expect_failure ("actions:\n  freeze_card:\n    query: x\n    retries: {base_ms: 100, cap_ms: 50}\n",
                      "actions.freeze_card.retries.cap_ms");
    s_expect_failure ("actions:\n  freeze_card:\n    query: x\n    params: [evidence.cards.0.id]\n",
                      "agent.yaml:4: actions.freeze_card.params: 'evidence.cards.0.id' is not user_id");
    s_expect_failure ("actions:\n  freeze_card:\n    query: x\n    params: ['action.params.$x']\n",
                      "not a context path");
    s_expect_failure ("actions:\n  'freeze card': {query: x}\n", "an action kind is");
    /* without the key, a retry could act twice */
    s_expect_failure ("actions:\n  freeze_card:\n    query: x\n    params: [user_id]\n",
                      "agent.yaml:4: actions.freeze_card.params: must pass action.key");
    s_expect_failure ("actions:\n  freeze_card: {query: x}\n", "actions.freeze_card.params: must pass action.key");
    if (verbose)
        printf ("executor_actions: ok\n");
}
