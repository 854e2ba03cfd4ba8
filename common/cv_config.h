/* The agent file: a YAML document read with libfyaml, and typed look-ups whose errors name the
   file, the line and the key ("agent.yaml:42: tools.cards.timeout_ms: must be 1..60000").

   Each service reads its own sections (intents, tools, policies, templates) through these
   helpers; this module knows YAML, not what the keys mean. */
#ifndef CV_CONFIG_H
#define CV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_error.h"

typedef struct _cv_config_t cv_config_t;
typedef struct fy_node cv_node_t;

/* Parses the file at path; NULL with err (file:line: reason) on failure. */
cv_config_t *cv_config_load (const char *path, cv_error_t *err) CV_MUST_CHECK;
/* Parses text; name stands for the file in errors. */
cv_config_t *cv_config_parse (const char *name, const char *text, cv_error_t *err) CV_MUST_CHECK;
void cv_config_destroy (cv_config_t **self_p);

cv_node_t *cv_config_root (cv_config_t *self);
const char *cv_config_name (const cv_config_t *self);

/* Fails with "name:line: path: message"; returns -1. */
int cv_config_fail (const cv_config_t *self, cv_node_t *node, const char *path, cv_error_t *err, const char *format,
                    ...) __attribute__ ((format (printf, 5, 6)));

bool cv_node_is_map (cv_node_t *node);
bool cv_node_is_list (cv_node_t *node);
bool cv_node_is_scalar (cv_node_t *node);
int cv_node_line (cv_node_t *node);
/* The value of a map's key, or NULL. */
cv_node_t *cv_node_get (cv_node_t *map, const char *key);
/* Items of a list, and key/value pairs of a map. */
size_t cv_node_count (cv_node_t *node);
cv_node_t *cv_node_item (cv_node_t *list, size_t index);
const char *cv_node_key (cv_node_t *map, size_t index);
cv_node_t *cv_node_value (cv_node_t *map, size_t index);
/* A scalar's text, borrowed from the document; NULL when node is not a scalar. */
const char *cv_node_text (cv_node_t *node);

/* Typed look-ups of map[key], at path (for errors). Missing optional keys leave *out alone. */
int cv_config_string (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, bool required,
                      const char **out, cv_error_t *err) CV_MUST_CHECK;
int cv_config_int (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, long min, long max,
                   long *out, cv_error_t *err) CV_MUST_CHECK;
/* A real number (a price, a cost, a temperature) in min..max: "must be a number" for a text
   strtod does not read whole (or NaN), "must be MIN..MAX, not X" for one outside. */
int cv_config_real (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, double min, double max,
                    double *out, cv_error_t *err) CV_MUST_CHECK;
/* A list of strings, or a single string taken as a list of one; *out is a malloc'd array of
   borrowed strings the caller frees, *count its length. */
int cv_config_strings (const cv_config_t *self, cv_node_t *map, const char *key, const char *path, const char ***out,
                       size_t *count, cv_error_t *err) CV_MUST_CHECK;
/* Fails on a key of map that is not in allowed (NULL-terminated): catches typos. */
int cv_config_known_keys (const cv_config_t *self, cv_node_t *map, const char *path, const char *const *allowed,
                          cv_error_t *err) CV_MUST_CHECK;
/* The node as a JSON value (scalars that read as numbers or booleans become those); new reference. */
json_t *cv_node_to_json (cv_node_t *node);

void cv_config_test (bool verbose);

#endif
