/* The parameters of a parameterised statement or URL, read from a `params` key of the agent file
   (a gatherer's tool, an executor's action): for each, the context path it reads (cv_context.h),
   the tool whose evidence that is when it is an evidence path, and whether it is optional (a `?`
   after an evidence path). An sql tool lists them, for $1..$N:

       params: [user_id, evidence.active_cards.0.id?]

   an http tool names them, for the {name} placeholders of its URL and body:

       params: {tracking: evidence.cards_in_delivery.0.delivery_tracking, quote: intent.slots.currency}

   An executor's action lists them as an sql tool does (action.params.card_id, user_id...). Pure
   parsing: whether an evidence path names a tool that exists is its reader's to check
   (gatherer_tools). */
#ifndef CV_PARAMS_H
#define CV_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_error.h"

#define CV_PARAMS_MAX 32
#define CV_PARAM_NAME_MAX_BYTES 64

/* Parsed parameters (plain data; cv_params_free frees it). Every array has count entries
   (at least one allocated, so that an empty list is not NULL). */
typedef struct {
    char **paths;   /* context paths, without the `?` */
    char **reads;   /* per path: the tool it reads (evidence.TOOL...), or NULL */
    bool *optional; /* per path: marked `?` */
    char **names;   /* per path: its placeholder name, when named; else NULL */
    size_t count;
    cv_node_t *node; /* the agent file's `params` node (borrowed from it), or NULL when absent */
} cv_params_t;

/* Reads tool_node's `params` (at path, "tools.NAME", for errors): a list (or one path) when not
   named, a map of placeholder names ([A-Za-z0-9_]) to paths when named (each required: no `?`).
   A missing `params` is none. -1 with err at the offending item's line. */
int cv_params_parse (const cv_config_t *agent, cv_node_t *tool_node, const char *path, bool named, cv_params_t *out,
                     cv_error_t *err) CV_MUST_CHECK;
void cv_params_free (cv_params_t *params);

/* The node of parameter index in params (a list's item, a map's value, or a single path). */
cv_node_t *cv_params_item (cv_node_t *params, size_t index);

/* Whether path is a context path: dot-separated non-empty parts of [A-Za-z0-9_]. */
bool cv_params_valid_path (const char *path);
/* Whether name is a placeholder's or a kept field's name: 1..CV_PARAM_NAME_MAX_BYTES-1 of
   [A-Za-z0-9_]. */
bool cv_params_valid_name (const char *name);
/* Whether path reads another tool's evidence (evidence or evidence.TOOL...). */
bool cv_params_reads_evidence (const char *path);

/* The text of the value at path in root (a request's context, an HTTP answer), as parameters and
   kept fields go: a scalar as it is (numbers in their shortest form), an object or an array as
   compact JSON; malloc'd, or NULL when there is no value there or it is null. */
char *cv_params_text (const json_t *root, const char *path);

void cv_params_test (bool verbose);

#endif
