/* A retry schedule read from the agent file. */
#include "cv_backoff_config.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cv_assert.h"

#define PATH_BYTES 192

int
cv_backoff_config_parse (const cv_config_t *agent, cv_node_t *map, const char *path, const cv_backoff_t *absent,
                         const cv_backoff_t *defaults, cv_backoff_t *out, cv_error_t *err)
{
    assert (agent && map && path && absent && defaults && out);
    static const char *const keys[] = {"max_attempts", "base_ms", "cap_ms", NULL};
    cv_node_t *node = cv_node_get (map, "retries");
    if (!node) {
        *out = *absent;
        return 0;
    }
    char retries_path[PATH_BYTES];
    snprintf (retries_path, sizeof retries_path, "%s.retries", path);
    if (!cv_node_is_map (node))
        return cv_config_fail (agent, node, retries_path, err, "must be a map of max_attempts, base_ms, cap_ms");
    long attempts = (long) defaults->max_attempts, base_ms = (long) defaults->base_ms, cap_ms = (long) defaults->cap_ms;
    if (cv_config_known_keys (agent, node, retries_path, keys, err)
        || cv_config_int (agent, node, "max_attempts", retries_path, 1, CV_BACKOFF_CONFIG_ATTEMPTS_MAX, &attempts, err)
        || cv_config_int (agent, node, "base_ms", retries_path, 0, CV_BACKOFF_CONFIG_MS_MAX, &base_ms, err))
        return -1;
    if (!cv_node_get (node, "cap_ms") && cap_ms < base_ms)
        cap_ms = base_ms;
    if (cv_config_int (agent, node, "cap_ms", retries_path, base_ms, CV_BACKOFF_CONFIG_MS_MAX, &cap_ms, err))
        return -1;
    *out =
        (cv_backoff_t){.base_ms = (uint64_t) base_ms, .cap_ms = (uint64_t) cap_ms, .max_attempts = (unsigned) attempts};
    return 0;
}

/*  --------------------------------------------------------------------------
    Self-test */

static int
s_parse (const char *text, cv_backoff_t *out, cv_error_t *err)
{
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, err);
    assert (agent);
    cv_node_t *tool = cv_node_get (cv_node_get (cv_config_root (agent), "tools"), "t");
    const cv_backoff_t absent = {.max_attempts = 1}, defaults = {.max_attempts = 3, .base_ms = 50, .cap_ms = 1000};
    int rc = cv_backoff_config_parse (agent, tool, "tools.t", &absent, &defaults, out, err);
    cv_config_destroy (&agent);
    return rc;
}

static void
s_expect_failure (const char *text, const char *expected)
{
    cv_backoff_t out;
    cv_error_t err;
    cv_assert_that (s_parse (text, &out, &err) == -1 && strstr (err.message, expected), "expected '%s', got %s",
                    expected, err.message);
}

void
cv_backoff_config_test (bool verbose)
{
    cv_backoff_t out;
    cv_error_t err;
    assert (s_parse ("tools:\n  t: {kind: sql}\n", &out, &err) == 0);
    assert (out.max_attempts == 1 && out.base_ms == 0 && out.cap_ms == 0); /* absent */
    assert (s_parse ("tools:\n  t: {retries: {}}\n", &out, &err) == 0);
    assert (out.max_attempts == 3 && out.base_ms == 50 && out.cap_ms == 1000); /* the defaults */
    assert (s_parse ("tools:\n  t: {retries: {max_attempts: 4, base_ms: 10, cap_ms: 200}}\n", &out, &err) == 0);
    assert (out.max_attempts == 4 && out.base_ms == 10 && out.cap_ms == 200);
    assert (s_parse ("tools:\n  t: {retries: {base_ms: 5000}}\n", &out, &err) == 0);
    assert (out.cap_ms == 5000); /* a cap below a given base is raised to it */
    s_expect_failure ("tools:\n  t:\n    retries: 3\n", "agent.yaml:3: tools.t.retries: must be a map");
    s_expect_failure ("tools:\n  t:\n    retries: {max_attempts: 0}\n", "agent.yaml:3: tools.t.retries.max_attempts");
    s_expect_failure ("tools:\n  t:\n    retries: {max_attempts: 11}\n", "tools.t.retries.max_attempts");
    s_expect_failure ("tools:\n  t:\n    retries: {base_ms: 100, cap_ms: 50}\n", "tools.t.retries.cap_ms");
    s_expect_failure ("tools:\n  t:\n    retries: {tries: 2}\n", "tools.t.retries");
    if (verbose)
        printf ("cv_backoff_config: ok\n");
}
