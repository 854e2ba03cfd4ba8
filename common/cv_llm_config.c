/* The LLM client's configuration: the agent file's `llm:` section, then the LLM settings
   (CONVEYOR_LLM_*) through cv_settings, checked, and logged without secrets. */
#include "cv_llm_config.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENV_BASE_URL "CONVEYOR_LLM_BASE_URL"
#define ENV_MODEL "CONVEYOR_LLM_MODEL"

const cv_setting_t cv_llm_config_settings[] = {
    {"llm-base-url", CV_SETTING_STRING, NULL, 0, 0,
     "an OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1), over the agent file's llm.base_url"},
    {"llm-model", CV_SETTING_STRING, NULL, 0, 0, "the LLM's model, over the agent file's llm.model"},
};
const size_t cv_llm_config_settings_count = sizeof cv_llm_config_settings / sizeof cv_llm_config_settings[0];

void
cv_llm_config_defaults (cv_llm_config_t *config)
{
    assert (config);
    *config = (cv_llm_config_t){
        .timeout_ms = 10000,
        .first_byte_timeout_ms = 0,
        .connect_timeout_ms = 2000,
        .max_retries = 2,
        .backoff_base_ms = 100,
        .backoff_max_ms = 2000,
        .breaker_threshold = 5,
        .breaker_cooldown_ms = 30000,
        .max_tokens = 256,
        .temperature = 0.0,
        .json_object = false,
        .max_response_bytes = 1024 * 1024,
        .cache_ttl_ms = 0,
        .cache_max_entries = 1024,
        .cache_max_bytes = 4L * 1024 * 1024,
    };
}

/* NULL when url is a usable base URL, else why not. */
static const char *
s_url_problem (const char *url)
{
    if (strncmp (url, "http://", 7) != 0 && strncmp (url, "https://", 8) != 0)
        return "must start with http:// or https://";
    if (strlen (url) >= CV_LLM_URL_MAX)
        return "is too long";
    for (const char *c = url; *c; c++)
        if ((unsigned char) *c <= ' ' || *c == 0x7f)
            return "must not contain spaces or control characters";
    const char *host = strstr (url, "://") + 3;
    if (!*host || *host == '/')
        return "has no host";
    return NULL;
}

static const char *
s_name_problem (const char *name)
{
    if (!*name)
        return "must not be empty";
    if (strlen (name) >= CV_LLM_NAME_MAX)
        return "is too long";
    for (const char *c = name; *c; c++)
        if ((unsigned char) *c < ' ' || *c == 0x7f || *c == '"')
            return "must not contain control characters or quotes";
    return NULL;
}

static const char *
s_env_name_problem (const char *name)
{
    if (!*name)
        return NULL; /* no key */
    if (strlen (name) >= CV_LLM_NAME_MAX)
        return "is too long";
    if (!isalpha ((unsigned char) *name) && *name != '_')
        return "must be an environment variable name";
    for (const char *c = name; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '_')
            return "must be an environment variable name";
    return NULL;
}

static void
s_path (char *out, size_t size, const char *path, const char *key)
{
    snprintf (out, size, "%s%s%s", path && *path ? path : "", path && *path ? "." : "", key);
}

/* map[key] copied into out (size bytes) when present, after check (which may be NULL). */
static int
s_load_text (const cv_config_t *file, cv_node_t *map, const char *key, const char *path, char *out, size_t size,
             const char *(*check) (const char *), cv_error_t *err)
{
    const char *text = NULL;
    if (cv_config_string (file, map, key, path, false, &text, err))
        return -1;
    if (!text)
        return 0;
    const char *problem = check ? check (text) : NULL;
    if (!problem && strlen (text) >= size)
        problem = "is too long";
    if (problem) {
        char full[256];
        s_path (full, sizeof full, path, key);
        return cv_config_fail (file, cv_node_get (map, key), full, err, "%s", problem);
    }
    snprintf (out, size, "%s", text);
    return 0;
}

int
cv_llm_config_load (cv_llm_config_t *config, const cv_config_t *file, cv_node_t *map, const char *path, cv_error_t *err)
{
    assert (config && file);
    static const char *const keys[] = {"base_url",
                                       "model",
                                       "fallback_model",
                                       "fallback_base_url",
                                       "api_key_env",
                                       "fallback_api_key_env",
                                       "timeout_ms",
                                       "first_byte_timeout_ms",
                                       "connect_timeout_ms",
                                       "max_retries",
                                       "backoff_base_ms",
                                       "backoff_max_ms",
                                       "breaker_threshold",
                                       "breaker_cooldown_ms",
                                       "max_tokens",
                                       "temperature",
                                       "response_format",
                                       "stream",
                                       "price_prompt_per_1k",
                                       "price_completion_per_1k",
                                       "max_response_bytes",
                                       "cache_ttl_ms",
                                       "cache_max_entries",
                                       "cache_max_bytes",
                                       NULL};
    if (cv_config_known_keys (file, map, path, keys, err))
        return -1;
    if (s_load_text (file, map, "base_url", path, config->base_url, sizeof config->base_url, s_url_problem, err)
        || s_load_text (file, map, "model", path, config->model, sizeof config->model, s_name_problem, err)
        || s_load_text (file, map, "fallback_model", path, config->fallback_model, sizeof config->fallback_model,
                        s_name_problem, err)
        || s_load_text (file, map, "fallback_base_url", path, config->fallback_base_url,
                        sizeof config->fallback_base_url, s_url_problem, err)
        || s_load_text (file, map, "api_key_env", path, config->api_key_env, sizeof config->api_key_env,
                        s_env_name_problem, err)
        || s_load_text (file, map, "fallback_api_key_env", path, config->fallback_api_key_env,
                        sizeof config->fallback_api_key_env, s_env_name_problem, err))
        return -1;
    if (cv_config_int (file, map, "timeout_ms", path, 1, 600000, &config->timeout_ms, err)
        || cv_config_int (file, map, "first_byte_timeout_ms", path, 0, 600000, &config->first_byte_timeout_ms, err)
        || cv_config_int (file, map, "connect_timeout_ms", path, 1, 60000, &config->connect_timeout_ms, err)
        || cv_config_int (file, map, "max_retries", path, 0, 10, &config->max_retries, err)
        || cv_config_int (file, map, "backoff_base_ms", path, 0, 60000, &config->backoff_base_ms, err)
        || cv_config_int (file, map, "backoff_max_ms", path, 0, 600000, &config->backoff_max_ms, err)
        || cv_config_int (file, map, "breaker_threshold", path, 1, 1000, &config->breaker_threshold, err)
        || cv_config_int (file, map, "breaker_cooldown_ms", path, 1, 3600000, &config->breaker_cooldown_ms, err)
        || cv_config_int (file, map, "max_tokens", path, 1, 1000000, &config->max_tokens, err)
        || cv_config_int (file, map, "max_response_bytes", path, 1024, 64L * 1024 * 1024, &config->max_response_bytes,
                          err)
        || cv_config_int (file, map, "cache_ttl_ms", path, 0, 86400000, &config->cache_ttl_ms, err)
        || cv_config_int (file, map, "cache_max_entries", path, 1, 1000000, &config->cache_max_entries, err)
        || cv_config_int (file, map, "cache_max_bytes", path, 1024, 1024L * 1024 * 1024, &config->cache_max_bytes, err))
        return -1;
    if (cv_config_real (file, map, "temperature", path, 0, 2, &config->temperature, err)
        || cv_config_real (file, map, "price_prompt_per_1k", path, 0, 1e6, &config->price_prompt_per_1k, err)
        || cv_config_real (file, map, "price_completion_per_1k", path, 0, 1e6, &config->price_completion_per_1k, err))
        return -1;
    const char *format = NULL;
    if (cv_config_string (file, map, "response_format", path, false, &format, err))
        return -1;
    char full[256];
    if (format) {
        s_path (full, sizeof full, path, "response_format");
        if (strcmp (format, "text") != 0 && strcmp (format, "json_object") != 0)
            return cv_config_fail (file, cv_node_get (map, "response_format"), full, err,
                                   "must be text or json_object, not %s", format);
        config->json_object = strcmp (format, "json_object") == 0;
    }
    const char *stream = NULL;
    if (cv_config_string (file, map, "stream", path, false, &stream, err))
        return -1;
    if (stream) {
        s_path (full, sizeof full, path, "stream");
        if (strcmp (stream, "true") != 0 && strcmp (stream, "false") != 0)
            return cv_config_fail (file, cv_node_get (map, "stream"), full, err, "must be true or false, not %s",
                                   stream);
        config->stream = strcmp (stream, "true") == 0;
    }
    if (config->backoff_max_ms < config->backoff_base_ms) {
        s_path (full, sizeof full, path, "backoff_max_ms");
        cv_node_t *node = cv_node_get (map, "backoff_max_ms");
        return cv_config_fail (file, node ? node : map, full, err, "must not be below backoff_base_ms (%ld)",
                               config->backoff_base_ms);
    }
    return 0;
}

int
cv_llm_config_override (cv_llm_config_t *config, const char *base_url, const char *model, cv_error_t *err)
{
    assert (config);
    if (base_url && *base_url) {
        const char *problem = s_url_problem (base_url);
        if (problem)
            return cv_error_set (err, CV_ERR_INVALID, "llm.base_url", "llm base URL %s", problem);
        snprintf (config->base_url, sizeof config->base_url, "%s", base_url);
    }
    if (model && *model) {
        const char *problem = s_name_problem (model);
        if (problem)
            return cv_error_set (err, CV_ERR_INVALID, "llm.model", "llm model %s", problem);
        snprintf (config->model, sizeof config->model, "%s", model);
    }
    return 0;
}

int
cv_llm_config_apply_settings (cv_llm_config_t *config, const cv_settings_t *settings, cv_error_t *err)
{
    assert (config);
    cv_settings_t *own = NULL;
    if (!settings || !cv_settings_has (settings, "llm-base-url") || !cv_settings_has (settings, "llm-model")) {
        /* No LLM rows in the caller's table: the LLM settings' own, from the environment. */
        own = cv_settings_new ("llm", "LLM settings", cv_llm_config_settings, cv_llm_config_settings_count);
        char *argv[] = {"llm", NULL};
        if (cv_settings_load (own, 1, argv, err)) {
            cv_settings_destroy (&own);
            return -1;
        }
        settings = own;
    }
    int rc = cv_llm_config_override (config, cv_settings_string (settings, "llm-base-url"),
                                     cv_settings_string (settings, "llm-model"), err);
    if (rc)
        cv_error_prefix (err, "--llm-base-url / --llm-model (%s / %s)", ENV_BASE_URL, ENV_MODEL);
    cv_settings_destroy (&own);
    return rc;
}

int
cv_llm_config_apply_env (cv_llm_config_t *config, cv_error_t *err)
{
    return cv_llm_config_apply_settings (config, NULL, err);
}

const char *
cv_llm_config_problem (const cv_llm_config_t *config)
{
    assert (config);
    const char *problem = s_url_problem (config->base_url);
    if (!problem)
        problem = s_name_problem (config->model);
    if (!problem && config->fallback_model[0])
        problem = s_name_problem (config->fallback_model);
    if (!problem && config->fallback_base_url[0])
        problem = s_url_problem (config->fallback_base_url);
    if (!problem)
        problem = s_env_name_problem (config->api_key_env);
    if (!problem)
        problem = s_env_name_problem (config->fallback_api_key_env);
    if (!problem && cv_llm_config_has_fallback (config) && !cv_llm_config_fallback_elsewhere (config)
        && strcmp (config->fallback_model[0] ? config->fallback_model : config->model, config->model) == 0)
        problem = "makes the fallback the main endpoint and model";
    return problem;
}

bool
cv_llm_config_same_url (const char *a, const char *b)
{
    assert (a && b);
    size_t a_length = strlen (a), b_length = strlen (b);
    while (a_length && a[a_length - 1] == '/')
        a_length--;
    while (b_length && b[b_length - 1] == '/')
        b_length--;
    return a_length == b_length && memcmp (a, b, a_length) == 0;
}

bool
cv_llm_config_fallback_elsewhere (const cv_llm_config_t *config)
{
    assert (config);
    return config->fallback_base_url[0] && !cv_llm_config_same_url (config->fallback_base_url, config->base_url);
}

bool
cv_llm_config_has_fallback (const cv_llm_config_t *config)
{
    assert (config);
    return config->fallback_model[0] || config->fallback_base_url[0];
}

bool
cv_llm_config_enabled (const cv_llm_config_t *config)
{
    assert (config);
    return config->base_url[0] && config->model[0];
}

/* The effective configuration on one line: the key's variable name, never its value. */
static void
s_describe (const cv_llm_config_t *config, char *out, size_t size)
{
    if (!cv_llm_config_enabled (config)) {
        snprintf (out, size, "llm: none configured");
        return;
    }
    char url[CV_LLM_URL_MAX];
    cv_settings_mask (config->base_url, url, sizeof url);
    char fallback[CV_LLM_URL_MAX];
    if (!cv_llm_config_has_fallback (config))
        snprintf (fallback, sizeof fallback, "(none)");
    else if (config->fallback_base_url[0])
        cv_settings_mask (config->fallback_base_url, fallback, sizeof fallback);
    else
        snprintf (fallback, sizeof fallback, "base_url");
    char cache[96];
    if (config->cache_ttl_ms > 0)
        snprintf (cache, sizeof cache, "%ldms/%ld entries/%ld bytes", config->cache_ttl_ms, config->cache_max_entries,
                  config->cache_max_bytes);
    else
        snprintf (cache, sizeof cache, "off");
    snprintf (
        out, size,
        "llm: base_url=%s model=%s api_key_env=%s fallback=%s%s%s%s%s timeout_ms=%ld first_byte_timeout_ms=%ld "
        "connect_timeout_ms=%ld max_retries=%ld backoff_ms=%ld..%ld breaker=%ld/%ldms max_tokens=%ld temperature=%g "
        "response_format=%s stream=%s price_per_1k=%g/%g max_response_bytes=%ld cache=%s",
        url, config->model, config->api_key_env[0] ? config->api_key_env : "(none)", fallback,
        config->fallback_model[0] ? " model=" : "", config->fallback_model,
        config->fallback_api_key_env[0] ? " api_key_env=" : "", config->fallback_api_key_env, config->timeout_ms,
        config->first_byte_timeout_ms, config->connect_timeout_ms, config->max_retries, config->backoff_base_ms,
        config->backoff_max_ms, config->breaker_threshold, config->breaker_cooldown_ms, config->max_tokens,
        config->temperature, config->json_object ? "json_object" : "text", config->stream ? "true" : "false",
        config->price_prompt_per_1k, config->price_completion_per_1k, config->max_response_bytes, cache);
}

void
cv_llm_config_log (const cv_llm_config_t *config, cv_log_t *log)
{
    assert (config && log);
    char line[2048];
    s_describe (config, line, sizeof line);
    cv_log_info (log, "%s", line);
}

/* ---------------------------------------------------------------------------------------------
   Self-test */

void
cv_llm_config_test (bool verbose)
{
    cv_error_t err;
    cv_llm_config_t config;
    cv_llm_config_defaults (&config);
    assert (!cv_llm_config_enabled (&config));
    assert (config.timeout_ms == 10000 && config.max_retries == 2 && config.max_response_bytes == 1048576);
    assert (config.cache_ttl_ms == 0 && config.cache_max_entries == 1024 && config.cache_max_bytes == 4194304);
    assert (config.first_byte_timeout_ms == 0);

    const char *text = "llm:\n"
                       "  base_url: http://127.0.0.1:8000/v1\n"
                       "  model: small\n"
                       "  fallback_model: big\n"
                       "  fallback_base_url: https://backup.example/v1\n"
                       "  api_key_env: CV_LLM_TEST_KEY\n"
                       "  fallback_api_key_env: CV_LLM_TEST_BACKUP_KEY\n"
                       "  timeout_ms: 1500\n"
                       "  first_byte_timeout_ms: 400\n"
                       "  temperature: 0.2\n"
                       "  response_format: json_object\n"
                       "  stream: true\n"
                       "  price_prompt_per_1k: 0.5\n"
                       "  price_completion_per_1k: 1.5\n"
                       "  cache_ttl_ms: 60000\n"
                       "  cache_max_bytes: 65536\n";
    cv_config_t *file = cv_config_parse ("agent.yaml", text, &err);
    assert (file);
    assert (cv_llm_config_load (&config, file, cv_node_get (cv_config_root (file), "llm"), "llm", &err) == 0);
    cv_config_destroy (&file);
    assert (cv_llm_config_enabled (&config));
    assert (strcmp (config.base_url, "http://127.0.0.1:8000/v1") == 0);
    assert (strcmp (config.fallback_model, "big") == 0 && cv_llm_config_has_fallback (&config));
    assert (strcmp (config.fallback_base_url, "https://backup.example/v1") == 0);
    assert (strcmp (config.fallback_api_key_env, "CV_LLM_TEST_BACKUP_KEY") == 0);
    assert (!cv_llm_config_problem (&config));
    /* A fallback that is the main endpoint and model is none. */
    cv_llm_config_t same = config;
    snprintf (same.fallback_base_url, sizeof same.fallback_base_url, "%s", same.base_url);
    snprintf (same.fallback_model, sizeof same.fallback_model, "%s", same.model);
    assert (strcmp (cv_llm_config_problem (&same), "makes the fallback the main endpoint and model") == 0);
    same.fallback_model[0] = '\0';
    assert (cv_llm_config_problem (&same));
    /* the same endpoint however many slashes end it */
    snprintf (same.fallback_base_url, sizeof same.fallback_base_url, "%s//", same.base_url);
    snprintf (same.fallback_model, sizeof same.fallback_model, "%s", same.model);
    assert (!cv_llm_config_fallback_elsewhere (&same) && cv_llm_config_problem (&same));
    assert (cv_llm_config_same_url ("http://a/v1/", "http://a/v1")
            && !cv_llm_config_same_url ("http://a/v1", "http://a/v2"));
    assert (!cv_llm_config_same_url ("http://a/v", "http://a/v1") && cv_llm_config_same_url ("", "/"));
    same.fallback_model[0] = '\0';
    same.fallback_base_url[0] = '\0';
    assert (!cv_llm_config_problem (&same) && !cv_llm_config_has_fallback (&same));
    assert (strcmp (config.api_key_env, "CV_LLM_TEST_KEY") == 0);
    assert (config.timeout_ms == 1500 && config.first_byte_timeout_ms == 400 && config.connect_timeout_ms == 2000);
    assert (config.temperature == 0.2 && config.json_object && config.stream);
    assert (config.price_completion_per_1k == 1.5);
    assert (config.cache_ttl_ms == 60000 && config.cache_max_entries == 1024 && config.cache_max_bytes == 65536);

    /* Errors name the file, the line and the key. */
    struct {
        const char *yaml;
        const char *message;
    } bad[] = {
        {"llm:\n  model: m\n  timout_ms: 5\n", "agent.yaml:3: llm.timout_ms: unknown key"},
        {"llm:\n  timeout_ms: 0\n", "agent.yaml:2: llm.timeout_ms: must be 1..600000, not 0"},
        {"llm:\n  max_retries: many\n", "agent.yaml:2: llm.max_retries: must be a whole number"},
        {"llm:\n  temperature: 3\n", "agent.yaml:2: llm.temperature: must be 0..2, not 3"},
        {"llm:\n  price_prompt_per_1k: cheap\n", "agent.yaml:2: llm.price_prompt_per_1k: must be a number"},
        {"llm:\n  base_url: ftp://x/v1\n", "agent.yaml:2: llm.base_url: must start with http:// or https://"},
        {"llm:\n  fallback_base_url: backup:8000\n",
         "agent.yaml:2: llm.fallback_base_url: must start with http:// or https://"},
        {"llm:\n  fallback_api_key_env: 1KEY\n",
         "agent.yaml:2: llm.fallback_api_key_env: must be an environment variable name"},
        {"llm:\n  api_key_env: 'my key'\n", "agent.yaml:2: llm.api_key_env: must be an environment variable name"},
        {"llm:\n  response_format: yaml\n", "agent.yaml:2: llm.response_format: must be text or json_object, not yaml"},
        {"llm:\n  stream: sometimes\n", "agent.yaml:2: llm.stream: must be true or false, not sometimes"},
        {"llm:\n  backoff_base_ms: 500\n  backoff_max_ms: 100\n",
         "agent.yaml:3: llm.backoff_max_ms: must not be below backoff_base_ms (500)"},
        {"llm:\n  model: [a, b]\n", "agent.yaml:2: llm.model: must be a string"},
        {"llm:\n  first_byte_timeout_ms: 600001\n",
         "agent.yaml:2: llm.first_byte_timeout_ms: must be 0..600000, not 600001"},
        {"llm:\n  cache_ttl_ms: -1\n", "agent.yaml:2: llm.cache_ttl_ms: must be 0..86400000, not -1"},
        {"llm:\n  cache_max_entries: 0\n", "agent.yaml:2: llm.cache_max_entries: must be 1..1000000, not 0"},
        {"llm:\n  cache_max_bytes: 1023\n", "agent.yaml:2: llm.cache_max_bytes: must be 1024..1073741824, not 1023"},
        {"llm: yes\n", "llm: must be a map"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        file = cv_config_parse ("agent.yaml", bad[i].yaml, &err);
        assert (file);
        cv_llm_config_t scratch;
        cv_llm_config_defaults (&scratch);
        assert (cv_llm_config_load (&scratch, file, cv_node_get (cv_config_root (file), "llm"), "llm", &err) == -1);
        if (verbose || !strstr (err.message, bad[i].message))
            printf ("  %s\n", err.message);
        assert (strstr (err.message, bad[i].message));
        assert (err.code == CV_ERR_INVALID);
        cv_config_destroy (&file);
    }

    /* Infrastructure comes from the environment, over the file. */
    setenv (ENV_BASE_URL, "http://llm.internal:9000/v1/", 1);
    setenv (ENV_MODEL, "env-model", 1);
    assert (cv_llm_config_apply_env (&config, &err) == 0);
    assert (strcmp (config.base_url, "http://llm.internal:9000/v1/") == 0);
    assert (strcmp (config.model, "env-model") == 0);
    setenv (ENV_BASE_URL, "llm.internal:9000", 1);
    assert (cv_llm_config_apply_env (&config, &err) == -1);
    assert (strstr (err.message, ENV_BASE_URL) && strstr (err.message, "http://"));
    unsetenv (ENV_BASE_URL);
    unsetenv (ENV_MODEL);
    assert (cv_llm_config_override (&config, NULL, "", &err) == 0);
    assert (strcmp (config.model, "env-model") == 0);

    char masked[CV_LLM_URL_MAX];
    cv_settings_mask ("https://user:secret@llm.example/v1", masked, sizeof masked);
    assert (strcmp (masked, "https://user:***@llm.example/v1") == 0);
    cv_settings_mask ("http://127.0.0.1:8000/v1", masked, sizeof masked);
    assert (strcmp (masked, "http://127.0.0.1:8000/v1") == 0);

    /* A launched worker's table has the LLM rows: the flag wins over the environment. */
    setenv (ENV_MODEL, "env-model", 1);
    cv_settings_t *settings = cv_settings_new ("test", "A test.", cv_llm_config_settings, cv_llm_config_settings_count);
    char *argv[] = {"test", "--llm-base-url", "https://llm.example/v1?api_key=sk-secret", NULL};
    assert (cv_settings_load (settings, 3, argv, &err) == 0);
    cv_llm_config_t launched;
    cv_llm_config_defaults (&launched);
    assert (cv_llm_config_apply_settings (&launched, settings, &err) == 0);
    assert (strcmp (launched.base_url, "https://llm.example/v1?api_key=sk-secret") == 0);
    assert (strcmp (launched.model, "env-model") == 0);
    cv_settings_destroy (&settings);
    unsetenv (ENV_MODEL);

    /* Logged with every secret redacted: a key in the URL masked, the key variable by name only. */
    snprintf (launched.api_key_env, sizeof launched.api_key_env, "CV_LLM_CONFIG_TEST_KEY");
    setenv ("CV_LLM_CONFIG_TEST_KEY", "sk-in-the-environment", 1);
    char line[2048];
    snprintf (launched.fallback_base_url, sizeof launched.fallback_base_url, "https://ops:pw@backup.example/v1");
    s_describe (&launched, line, sizeof line);
    if (verbose)
        printf ("  %s\n", line);
    assert (strstr (line, "base_url=https://llm.example/v1?api_key=*** model=env-model"));
    assert (strstr (line, "api_key_env=CV_LLM_CONFIG_TEST_KEY"));
    assert (strstr (line, "fallback=https://ops:***@backup.example/v1 timeout_ms="));
    assert (!strstr (line, "sk-") && !strstr (line, "pw@"));
    assert (strstr (line, " cache=off") && strstr (line, " first_byte_timeout_ms=0 "));
    launched.cache_ttl_ms = 60000;
    s_describe (&launched, line, sizeof line);
    assert (strstr (line, " cache=60000ms/1024 entries/4194304 bytes"));
    unsetenv ("CV_LLM_CONFIG_TEST_KEY");
    cv_llm_config_t none;
    cv_llm_config_defaults (&none);
    s_describe (&none, line, sizeof line);
    assert (strcmp (line, "llm: none configured") == 0);
    cv_log_t *log = cv_log_new ("cv_llm_config_test", "selftest", verbose);
    cv_llm_config_log (&none, log);
    cv_log_destroy (&log);
}
