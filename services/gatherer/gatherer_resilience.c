/* A tool's retries, breaker and cache settings, read from the agent file. */
#include "gatherer_resilience.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cv_backoff_config.h"
#include "cv_envelope.h"

#define KEY_PATH_BYTES (CV_NAME_MAX_BYTES + 48)

const char *const gatherer_resilience_keys[] = {"retries", "breaker", "cache", "personal", NULL};

/* map[key] when it is there: it must be a map of the keys allowed. *node NULL when it is not. */
static int
s_section (const cv_config_t *agent, cv_node_t *map, const char *key, const char *path, const char *const *allowed,
           cv_node_t **node, char *section_path, cv_error_t *err)
{
    *node = cv_node_get (map, key);
    snprintf (section_path, KEY_PATH_BYTES, "%s.%s", path, key);
    if (!*node)
        return 0;
    if (!cv_node_is_map (*node))
        return cv_config_fail (agent, *node, section_path, err, "must be a map of %s%s%s...", allowed[0],
                               allowed[1] ? ", " : "", allowed[1] ? allowed[1] : "");
    return cv_config_known_keys (agent, *node, section_path, allowed, err);
}

static int
s_retries (const cv_config_t *agent, cv_node_t *tool, const char *path, gatherer_resilience_t *out, cv_error_t *err)
{
    /* no `retries`: one attempt */
    static const cv_backoff_t absent = {.max_attempts = 1},
                              defaults = {.max_attempts = GATHERER_RETRIES_ATTEMPTS_DEFAULT,
                                          .base_ms = GATHERER_RETRIES_BASE_MS_DEFAULT,
                                          .cap_ms = GATHERER_RETRIES_CAP_MS_DEFAULT};
    return cv_backoff_config_parse (agent, tool, path, &absent, &defaults, &out->retries, err);
}

static int
s_breaker (const cv_config_t *agent, cv_node_t *tool, const char *path, gatherer_resilience_t *out, cv_error_t *err)
{
    static const char *const keys[] = {"failures", "rate", "cooldown_ms", NULL};
    static const char *const rate_keys[] = {"min_calls", "window_ms", "percent", NULL};
    char section_path[KEY_PATH_BYTES], rate_path[KEY_PATH_BYTES];
    cv_node_t *node, *rate = NULL;
    long failures = GATHERER_BREAKER_FAILURES_DEFAULT, cooldown_ms = GATHERER_BREAKER_COOLDOWN_MS_DEFAULT;
    long min_calls = GATHERER_BREAKER_MIN_CALLS_DEFAULT, window_ms = GATHERER_BREAKER_WINDOW_MS_DEFAULT,
         percent = GATHERER_BREAKER_PERCENT_DEFAULT;
    if (s_section (agent, tool, "breaker", path, keys, &node, section_path, err))
        return -1;
    if (node
        && (cv_config_int (agent, node, "failures", section_path, 1, 1000, &failures, err)
            || cv_config_int (agent, node, "cooldown_ms", section_path, 1, 3600000, &cooldown_ms, err)
            || s_section (agent, node, "rate", section_path, rate_keys, &rate, rate_path, err)))
        return -1;
    if (rate
        && (cv_config_int (agent, rate, "min_calls", rate_path, 1, 100000, &min_calls, err)
            || cv_config_int (agent, rate, "window_ms", rate_path, 10, 3600000, &window_ms, err)
            || cv_config_int (agent, rate, "percent", rate_path, 1, 100, &percent, err)))
        return -1;
    out->breaker_failures = (unsigned) failures;
    out->breaker_cooldown_ms = (uint64_t) cooldown_ms;
    out->breaker_min_calls = (unsigned) min_calls;
    out->breaker_window_ms = (uint64_t) window_ms;
    out->breaker_percent = (unsigned) percent;
    return 0;
}

int
gatherer_resilience_parse (const cv_config_t *agent, cv_node_t *tool, const char *path, gatherer_resilience_t *out,
                           cv_error_t *err)
{
    assert (agent && tool && path && out);
    *out = (gatherer_resilience_t){.personal = true};
    if (s_retries (agent, tool, path, out, err) || s_breaker (agent, tool, path, out, err))
        return -1;
    static const char *const cache_keys[] = {"ttl_ms", NULL};
    char section_path[KEY_PATH_BYTES];
    cv_node_t *cache;
    if (s_section (agent, tool, "cache", path, cache_keys, &cache, section_path, err))
        return -1;
    if (cache) {
        long ttl_ms = 0;
        if (!cv_node_get (cache, "ttl_ms"))
            return cv_config_fail (agent, cache, section_path, err, "ttl_ms is required (1..%d)",
                                   GATHERER_CACHE_TTL_MS_MAX);
        if (cv_config_int (agent, cache, "ttl_ms", section_path, 1, GATHERER_CACHE_TTL_MS_MAX, &ttl_ms, err))
            return -1;
        out->cache_ttl_ms = (uint64_t) ttl_ms;
    }
    cv_node_t *personal = cv_node_get (tool, "personal");
    if (personal) {
        const char *text = cv_node_text (personal);
        snprintf (section_path, sizeof section_path, "%s.personal", path);
        if (text && strcmp (text, "true") == 0)
            out->personal = true;
        else if (text && strcmp (text, "false") == 0)
            out->personal = false;
        else
            return cv_config_fail (agent, personal, section_path, err, "must be true or false");
    }
    return 0;
}

/*  --------------------------------------------------------------------------
    Self-test */

/* Parses tools.t of text; returns rc, fills *out, and the error in err. */
static int
s_test_parse (const char *text, gatherer_resilience_t *out, cv_error_t *err)
{
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, err);
    assert (agent);
    cv_node_t *tool = cv_node_get (cv_node_get (cv_config_root (agent), "tools"), "t");
    assert (tool);
    int rc = gatherer_resilience_parse (agent, tool, "tools.t", out, err);
    cv_config_destroy (&agent);
    return rc;
}

static void
s_test_fails (const char *text, const char *expected)
{
    gatherer_resilience_t out;
    cv_error_t err;
    assert (s_test_parse (text, &out, &err) == -1);
    cv_assert_that (strstr (err.message, expected), "expected '%s' in '%s'", expected, err.message);
}

void
gatherer_resilience_test (bool verbose)
{
    gatherer_resilience_t out;
    cv_error_t err;
    /* the defaults: one attempt, a breaker, no cache, personal */
    assert (s_test_parse ("tools:\n  t: {kind: sql}\n", &out, &err) == 0);
    assert (out.retries.max_attempts == 1);
    assert (out.breaker_failures == GATHERER_BREAKER_FAILURES_DEFAULT);
    assert (out.breaker_cooldown_ms == GATHERER_BREAKER_COOLDOWN_MS_DEFAULT);
    assert (out.breaker_min_calls == GATHERER_BREAKER_MIN_CALLS_DEFAULT);
    assert (out.breaker_window_ms == GATHERER_BREAKER_WINDOW_MS_DEFAULT);
    assert (out.breaker_percent == GATHERER_BREAKER_PERCENT_DEFAULT);
    assert (out.cache_ttl_ms == 0 && out.personal);

    /* everything given */
    assert (s_test_parse ("tools:\n"
                          "  t:\n"
                          "    retries: {max_attempts: 4, base_ms: 10, cap_ms: 200}\n"
                          "    breaker:\n"
                          "      failures: 2\n"
                          "      rate: {min_calls: 5, window_ms: 1000, percent: 80}\n"
                          "      cooldown_ms: 300\n"
                          "    cache: {ttl_ms: 60000}\n"
                          "    personal: false\n",
                          &out, &err)
            == 0);
    assert (out.retries.max_attempts == 4 && out.retries.base_ms == 10 && out.retries.cap_ms == 200);
    assert (out.breaker_failures == 2 && out.breaker_cooldown_ms == 300);
    assert (out.breaker_min_calls == 5 && out.breaker_window_ms == 1000 && out.breaker_percent == 80);
    assert (out.cache_ttl_ms == 60000 && !out.personal);

    /* retries alone take the schedule's defaults; a cap below a given base is raised to it */
    assert (s_test_parse ("tools:\n  t: {retries: {}}\n", &out, &err) == 0);
    assert (out.retries.max_attempts == GATHERER_RETRIES_ATTEMPTS_DEFAULT);
    assert (out.retries.base_ms == GATHERER_RETRIES_BASE_MS_DEFAULT);
    assert (out.retries.cap_ms == GATHERER_RETRIES_CAP_MS_DEFAULT);
    assert (s_test_parse ("tools:\n  t: {retries: {base_ms: 5000}}\n", &out, &err) == 0);
    assert (out.retries.cap_ms == 5000);
    assert (s_test_parse ("tools:\n  t: {breaker: {failures: 1}, personal: true}\n", &out, &err) == 0);
    assert (out.breaker_failures == 1 && out.personal);

    /* mistakes name the file, the line and the key */
    s_test_fails ("tools:\n  t:\n    retries: 3\n", "agent.yaml:3: tools.t.retries: must be a map");
    s_test_fails ("tools:\n  t:\n    retries: {max_attempts: 0}\n", "agent.yaml:3: tools.t.retries.max_attempts");
    s_test_fails ("tools:\n  t:\n    retries: {max_attempts: 11}\n", "tools.t.retries.max_attempts");
    s_test_fails ("tools:\n  t:\n    retries: {base_ms: 100, cap_ms: 50}\n", "tools.t.retries.cap_ms");
    s_test_fails ("tools:\n  t:\n    retries: {tries: 2}\n", "agent.yaml:3: tools.t.retries");
    s_test_fails ("tools:\n  t:\n    breaker: {failures: 0}\n", "tools.t.breaker.failures");
    s_test_fails ("tools:\n  t:\n    breaker:\n      rate: {percent: 101}\n",
                  "agent.yaml:4: tools.t.breaker.rate.percent");
    s_test_fails ("tools:\n  t:\n    breaker:\n      rate: 50\n", "agent.yaml:4: tools.t.breaker.rate: must be a map");
    s_test_fails ("tools:\n  t:\n    breaker: {cooldown_ms: 0}\n", "tools.t.breaker.cooldown_ms");
    s_test_fails ("tools:\n  t:\n    cache: {}\n", "tools.t.cache: ttl_ms is required");
    s_test_fails ("tools:\n  t:\n    cache: {ttl_ms: 0}\n", "tools.t.cache.ttl_ms");
    s_test_fails ("tools:\n  t:\n    cache: {ttl: 5}\n", "agent.yaml:3: tools.t.cache");
    s_test_fails ("tools:\n  t:\n    cache:\n      max: 5\n", "agent.yaml:4: tools.t.cache.max: unknown key");
    s_test_fails ("tools:\n  t:\n    personal: maybe\n", "agent.yaml:3: tools.t.personal: must be true or false");
    if (verbose)
        printf ("gatherer_resilience: ok\n");
}
