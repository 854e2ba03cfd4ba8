/* A retry schedule (cv_backoff_t) read from a `retries` key of the agent file, the one way every
   section that retries writes it (a gatherer's tool, an executor's action):

     retries: {max_attempts: 3, base_ms: 50, cap_ms: 1000}
       max_attempts   1..CV_BACKOFF_CONFIG_ATTEMPTS_MAX, attempts in all, the first included
       base_ms        0..CV_BACKOFF_CONFIG_MS_MAX, the first retry's wait ceiling
       cap_ms         base_ms..CV_BACKOFF_CONFIG_MS_MAX, no wait above it; when left out and
                      below a given base_ms, raised to it

   Keys left out take the caller's defaults; a `retries` left out is the caller's `absent`
   schedule (one attempt for a tool, three for an action). Pure parsing. */
#ifndef CV_BACKOFF_CONFIG_H
#define CV_BACKOFF_CONFIG_H

#include <stdbool.h>

#include "cv_backoff.h"
#include "cv_config.h"
#include "cv_error.h"

#define CV_BACKOFF_CONFIG_ATTEMPTS_MAX 10
#define CV_BACKOFF_CONFIG_MS_MAX 60000

/* Reads map's `retries` (map at path, "tools.NAME", for errors) into *out: absent when there is
   none, defaults for the keys it leaves out. -1 with err (file:line: path.retries...) otherwise. */
int cv_backoff_config_parse (const cv_config_t *agent, cv_node_t *map, const char *path, const cv_backoff_t *absent,
                             const cv_backoff_t *defaults, cv_backoff_t *out, cv_error_t *err) CV_MUST_CHECK;

void cv_backoff_config_test (bool verbose);

#endif
