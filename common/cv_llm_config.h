/* The configuration of the LLM client (cv_llm): plain data read from the agent file's `llm:`
   section (cv_llm_config_load), then the LLM settings, llm-base-url and llm-model
   (CONVEYOR_LLM_BASE_URL, CONVEYOR_LLM_MODEL), through cv_settings: infrastructure settings, as
   containers expect. The keys, their defaults and limits are listed in cv_llm.h. */
#ifndef CV_LLM_CONFIG_H
#define CV_LLM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_config.h"
#include "cv_error.h"
#include "cv_log.h"
#include "cv_settings.h"

#define CV_LLM_NAME_MAX 128
#define CV_LLM_URL_MAX 512

/* Plain data, copied by value. */
typedef struct {
    char base_url[CV_LLM_URL_MAX];     /* e.g. http://127.0.0.1:8000/v1; "" for no LLM */
    char model[CV_LLM_NAME_MAX];       /* "" for no LLM */
    char api_key_env[CV_LLM_NAME_MAX]; /* name of the variable holding the key; "" to send none */
    /* The fallback: another model, at base_url or at another endpoint; none when both are "". */
    char fallback_model[CV_LLM_NAME_MAX];       /* "": the main model */
    char fallback_base_url[CV_LLM_URL_MAX];     /* "": the main base URL */
    char fallback_api_key_env[CV_LLM_NAME_MAX]; /* "": the main key at the main base URL, none elsewhere */
    long timeout_ms;
    long first_byte_timeout_ms; /* 0: none but timeout_ms */
    long connect_timeout_ms;
    long max_retries;
    long backoff_base_ms;
    long backoff_max_ms;
    long breaker_threshold;
    long breaker_cooldown_ms;
    long max_tokens;
    double temperature;
    bool json_object; /* response_format: {"type": "json_object"} */
    bool stream;      /* ask for the answer as server-sent events, and read it from them */
    double price_prompt_per_1k;
    double price_completion_per_1k;
    long max_response_bytes;
    /* The answer cache (cv_llm_cache): off when cache_ttl_ms is 0. */
    long cache_ttl_ms;
    long cache_max_entries;
    long cache_max_bytes;
} cv_llm_config_t;

/* The defaults listed above, no LLM. */
void cv_llm_config_defaults (cv_llm_config_t *config);

/* Reads the keys present in map (the `llm:` node of file) over config; path names it in errors
   ("agent.yaml:12: llm.timeout_ms: must be 1..600000, not 0"). Unknown keys are refused. */
int cv_llm_config_load (cv_llm_config_t *config, const cv_config_t *file, cv_node_t *map, const char *path,
                        cv_error_t *err) CV_MUST_CHECK;

/* Sets the base URL and the model when given (non-NULL, non-empty), checked as the loader does;
   for a service that reads them through its cv_settings table. */
int cv_llm_config_override (cv_llm_config_t *config, const char *base_url, const char *model,
                            cv_error_t *err) CV_MUST_CHECK;

/* The LLM settings' rows (llm-base-url, llm-model: CONVEYOR_LLM_BASE_URL, CONVEYOR_LLM_MODEL),
   for a service's cv_settings table; cv_launcher puts them in every worker's. */
extern const cv_setting_t cv_llm_config_settings[];
extern const size_t cv_llm_config_settings_count;

/* cv_llm_config_override from settings' llm-base-url and llm-model when its table has them (a
   launched worker's: flag, then environment); otherwise (settings NULL, or a table without
   them) from the environment, read by cv_settings through the rows above. */
int cv_llm_config_apply_settings (cv_llm_config_t *config, const cv_settings_t *settings,
                                  cv_error_t *err) CV_MUST_CHECK;

/* cv_llm_config_apply_settings with no settings: CONVEYOR_LLM_BASE_URL and CONVEYOR_LLM_MODEL. */
int cv_llm_config_apply_env (cv_llm_config_t *config, cv_error_t *err) CV_MUST_CHECK;

/* NULL when config's URLs, models and key variable names are usable, and a fallback, when there
   is one, differs from the main endpoint and model; else what is wrong with the first that is not
   ("must start with http:// or https://"). */
const char *cv_llm_config_problem (const cv_llm_config_t *config);

/* True when a base URL and a model are set: an LLM is configured. */
bool cv_llm_config_enabled (const cv_llm_config_t *config);

/* True when a fallback is configured: a fallback model, a fallback base URL, or both. */
bool cv_llm_config_has_fallback (const cv_llm_config_t *config);
/* True when the fallback has a base URL of its own that is not the main one: another endpoint,
   which never gets the main one's key. */
bool cv_llm_config_fallback_elsewhere (const cv_llm_config_t *config);
/* True when two base URLs are the same but for slashes at their ends. */
bool cv_llm_config_same_url (const char *a, const char *b);

/* Logs the effective configuration at info: the key's variable name, never its value; a password
   in the base URL masked. */
void cv_llm_config_log (const cv_llm_config_t *config, cv_log_t *log);

void cv_llm_config_test (bool verbose);

#endif
