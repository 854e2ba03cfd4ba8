/* Statement and URL parameters, read from the agent file. */
#include "cv_params.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_envelope.h"
#include "cv_template.h"

#define PATH_MAX_BYTES 128 /* as cv_template_lookup's */
#define EVIDENCE_PREFIX "evidence."

bool
cv_params_valid_path (const char *path)
{
    assert (path);
    size_t size = strlen (path);
    if (size == 0 || size >= PATH_MAX_BYTES || path[0] == '.' || path[size - 1] == '.' || strstr (path, ".."))
        return false;
    for (const char *c = path; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'
              || *c == '.'))
            return false;
    return true;
}

bool
cv_params_reads_evidence (const char *path)
{
    assert (path);
    return strcmp (path, "evidence") == 0 || strncmp (path, EVIDENCE_PREFIX, strlen (EVIDENCE_PREFIX)) == 0;
}

bool
cv_params_valid_name (const char *name)
{
    assert (name);
    size_t size = strlen (name);
    if (size == 0 || size >= CV_PARAM_NAME_MAX_BYTES)
        return false;
    return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == size;
}

/* The tool an evidence path reads (malloc'd), or NULL for another path. */
static char *
s_read_tool (const char *path)
{
    if (strncmp (path, EVIDENCE_PREFIX, strlen (EVIDENCE_PREFIX)) != 0)
        return NULL;
    const char *name = path + strlen (EVIDENCE_PREFIX);
    return cv_strndup (name, strcspn (name, "."));
}

char *
cv_params_text (const json_t *root, const char *path)
{
    assert (path);
    json_t *value = root ? cv_template_lookup (root, path) : NULL;
    if (!value || json_is_null (value))
        return NULL;
    if (json_is_object (value) || json_is_array (value))
        return json_dumps (value, JSON_COMPACT | JSON_ENSURE_ASCII);
    return cv_template_scalar_text (value);
}

cv_node_t *
cv_params_item (cv_node_t *params, size_t index)
{
    if (cv_node_is_list (params))
        return cv_node_item (params, index);
    if (cv_node_is_map (params))
        return cv_node_value (params, index);
    return params;
}

void
cv_params_free (cv_params_t *params)
{
    assert (params);
    for (size_t i = 0; i < params->count; i++) {
        free (params->paths[i]);
        free (params->reads[i]);
        if (params->names)
            free (params->names[i]);
    }
    free (params->paths);
    free (params->reads);
    free (params->optional);
    free (params->names);
    memset (params, 0, sizeof *params);
}

/* Checks and keeps parameter index, text as written. */
static int
s_parse_one (const cv_config_t *agent, cv_params_t *out, size_t index, const char *text, bool named,
             const char *params_path, cv_error_t *err)
{
    cv_node_t *item = cv_params_item (out->node, index);
    if (!text)
        return cv_config_fail (agent, item, params_path, err, "item %zu must be a context path", index + 1);
    size_t size = strlen (text);
    bool optional = size > 0 && text[size - 1] == '?';
    char *path = cv_strndup (text, optional ? size - 1 : size);
    char *reads = s_read_tool (path);
    /* kept at once, so that a failure below frees them with the rest */
    out->paths[index] = path;
    out->reads[index] = reads;
    out->optional[index] = optional;
    out->count = index + 1;
    if (!cv_params_valid_path (path))
        return cv_config_fail (agent, item, params_path, err,
                               "'%s' is not a context path (parts of [A-Za-z0-9_] joined by dots)", text);
    if (strcmp (path, "evidence") == 0)
        return cv_config_fail (agent, item, params_path, err,
                               "'%s' names no tool: an input is evidence.TOOL, evidence.TOOL.N.FIELD...", text);
    if (optional && named)
        return cv_config_fail (agent, item, params_path, err,
                               "'%s': a named parameter fills a placeholder and is required; it takes no `?`", text);
    if (optional && !reads)
        return cv_config_fail (agent, item, params_path, err,
                               "'%s': only an evidence path takes `?`; a missing %s is NULL already", text, path);
    return 0;
}

int
cv_params_parse (const cv_config_t *agent, cv_node_t *tool_node, const char *path, bool named, cv_params_t *out,
                 cv_error_t *err)
{
    assert (agent && tool_node && path && out);
    memset (out, 0, sizeof *out);
    char params_path[CV_NAME_MAX_BYTES + 24];
    snprintf (params_path, sizeof params_path, "%s.params", path);
    cv_node_t *node = cv_node_get (tool_node, "params");
    out->node = node;
    size_t count = 0;
    if (node && named && !cv_node_is_map (node))
        return cv_config_fail (agent, node, params_path, err, "must be a map of placeholder name to context path");
    if (node && !named && cv_node_is_map (node))
        return cv_config_fail (agent, node, params_path, err, "must be a context path or a list of them");
    if (node)
        count = cv_node_is_scalar (node) ? 1 : cv_node_count (node);
    if (count > CV_PARAMS_MAX)
        return cv_config_fail (agent, node, params_path, err, "%zu parameters, over the limit of %d", count,
                               CV_PARAMS_MAX);
    size_t slots = count ? count : 1;
    out->paths = cv_calloc (slots, sizeof (char *));
    out->reads = cv_calloc (slots, sizeof (char *));
    out->optional = cv_calloc (slots, sizeof (bool));
    out->names = named ? cv_calloc (slots, sizeof (char *)) : NULL;
    for (size_t i = 0; i < count; i++) {
        const char *text = cv_node_text (cv_params_item (node, i));
        if (s_parse_one (agent, out, i, text, named, params_path, err))
            goto failed;
        if (!named)
            continue;
        const char *name = cv_node_key (node, i);
        out->names[i] = cv_strdup (name ? name : "");
        if (!name || !cv_params_valid_name (name)) {
            cv_config_fail (agent, cv_params_item (node, i), params_path, err,
                            "'%s' is not a placeholder name (1..%d of [A-Za-z0-9_])", name ? name : "",
                            CV_PARAM_NAME_MAX_BYTES - 1);
            goto failed;
        }
    }
    return 0;
failed:
    cv_params_free (out);
    return -1;
}

/*  --------------------------------------------------------------------------
    Self-test */

/* Parses the params of tool t in text; returns the outcome, with err. */
static int
s_parse (const char *text, bool named, cv_params_t *out, cv_error_t *err)
{
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, err);
    assert (agent);
    cv_node_t *tool = cv_node_get (cv_node_get (cv_config_root (agent), "tools"), "t");
    int rc = cv_params_parse (agent, tool, "tools.t", named, out, err);
    cv_config_destroy (&agent);
    out->node = NULL; /* the document's, gone */
    return rc;
}

static void
s_expect_failure (const char *text, bool named, const char *expected)
{
    cv_params_t params;
    cv_error_t err;
    int rc = s_parse (text, named, &params, &err);
    cv_assert_that (rc == -1 && strstr (err.message, expected), "expected '%s', got %s", expected,
                    rc ? err.message : "success");
    assert (params.count == 0 && !params.paths);
}

void
cv_params_test (bool verbose)
{
    assert (cv_params_valid_path ("intent.slots.card_last4"));
    assert (!cv_params_valid_path ("") && !cv_params_valid_path ("a..b"));
    assert (!cv_params_valid_path (".a") && !cv_params_valid_path ("a.") && !cv_params_valid_path ("a-b"));
    assert (cv_params_reads_evidence ("evidence") && cv_params_reads_evidence ("evidence.cards.0.id"));
    assert (!cv_params_reads_evidence ("evidences.x") && !cv_params_reads_evidence ("user_id"));

    /* a list, for $1..$N */
    cv_params_t params;
    cv_error_t err;
    int rc = s_parse ("tools:\n  t: {params: [user_id, 'evidence.cards.0.id?']}\n", false, &params, &err);
    assert (rc == 0 && params.count == 2 && !params.names);
    assert (streq (params.paths[0], "user_id") && !params.reads[0] && !params.optional[0]);
    assert (streq (params.paths[1], "evidence.cards.0.id") && streq (params.reads[1], "cards") && params.optional[1]);
    cv_params_free (&params);
    assert (params.count == 0);
    rc = s_parse ("tools:\n  t: {params: user_id}\n", false, &params, &err);
    assert (rc == 0 && params.count == 1 && streq (params.paths[0], "user_id"));
    cv_params_free (&params);
    rc = s_parse ("tools:\n  t: {kind: sql}\n", false, &params, &err);
    assert (rc == 0 && params.count == 0 && params.paths);
    cv_params_free (&params);

    /* a map, for {name} placeholders */
    rc = s_parse ("tools:\n  t:\n    params: {tracking: evidence.cards.0.tracking, quote: intent.slots.currency}\n",
                  true, &params, &err);
    assert (rc == 0 && params.count == 2);
    assert (streq (params.names[0], "tracking") && streq (params.reads[0], "cards"));
    assert (streq (params.names[1], "quote") && streq (params.paths[1], "intent.slots.currency"));
    cv_params_free (&params);

    s_expect_failure ("tools:\n  t: {params: [user_id, 'a b']}\n", false,
                      "agent.yaml:2: tools.t.params: 'a b' is not a context path");
    s_expect_failure ("tools:\n  t: {params: [evidence]}\n", false, "'evidence' names no tool");
    s_expect_failure ("tools:\n  t: {params: ['user_id?']}\n", false, "only an evidence path takes `?`");
    s_expect_failure ("tools:\n  t: {params: [[user_id]]}\n", false, "item 1 must be a context path");
    s_expect_failure ("tools:\n  t: {params: {a: user_id}}\n", false, "must be a context path or a list");
    s_expect_failure ("tools:\n  t: {params: [user_id]}\n", true, "must be a map of placeholder name");
    s_expect_failure ("tools:\n  t: {params: {a: 'evidence.cards.0.id?'}}\n", true, "it takes no `?`");
    assert (cv_params_valid_name ("card_4") && !cv_params_valid_name ("") && !cv_params_valid_name ("a.b"));
    s_expect_failure ("tools:\n  t:\n    params:\n      ok: user_id\n      'no-dash': text\n", true,
                      "agent.yaml:5: tools.t.params: 'no-dash' is not a placeholder name");
    /* values as text */
    json_t *root =
        json_pack ("{s:s, s:i, s:b, s:n, s:{s:[i,s]}}", "s", "x'y", "n", 42, "b", 1, "null", "o", "a", 1, "z");
    char *text = cv_params_text (root, "s");
    assert (streq (text, "x'y"));
    free (text);
    text = cv_params_text (root, "n");
    assert (streq (text, "42"));
    free (text);
    text = cv_params_text (root, "b");
    assert (streq (text, "true"));
    free (text);
    text = cv_params_text (root, "o");
    assert (streq (text, "{\"a\":[1,\"z\"]}"));
    free (text);
    text = cv_params_text (root, "o.a.1");
    assert (streq (text, "z"));
    free (text);
    assert (!cv_params_text (root, "null") && !cv_params_text (root, "missing"));
    assert (!cv_params_text (NULL, "s"));
    json_decref (root);
    if (verbose)
        printf ("cv_params: ok\n");
}
