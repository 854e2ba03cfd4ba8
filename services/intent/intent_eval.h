/* The figures of `conveyor eval`: accuracy, macro-F1, the confusions that cost most, the fast
   path's coverage and accuracy, and latency percentiles, from one (expected, predicted) pair per
   labelled query. Pure computation: the caller runs the queries. */
#ifndef INTENT_EVAL_H
#define INTENT_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cv_assert.h"

typedef struct _intent_eval_t intent_eval_t;

intent_eval_t *intent_eval_new (void);
void intent_eval_destroy (intent_eval_t **self_p);

/* Records one query: the label it has, the one it got, whether the fast path decided it (a rule
   or the model above its threshold, no LLM), its method name and how long it took. */
void intent_eval_add (intent_eval_t *self, const char *expected, const char *predicted, bool fast_path,
                      const char *method, int64_t elapsed_us);

size_t intent_eval_count (const intent_eval_t *self);
double intent_eval_accuracy (const intent_eval_t *self);
/* The mean over labels (expected or predicted at least once) of their F1. */
double intent_eval_macro_f1 (const intent_eval_t *self);

/* Everything, as one JSON object: n, accuracy, macro_f1, fast_path {coverage, accuracy},
   latency_us {p50, p99, max}, methods {name: {n, accuracy}}, confusions [{expected, predicted, count}]
   (the most frequent `confusions`, most first). A new reference. */
json_t *intent_eval_json (const intent_eval_t *self, size_t confusions);

/* The same for a person, on out. */
void intent_eval_print (const intent_eval_t *self, size_t confusions, FILE *out);

void intent_eval_test (bool verbose);

#endif
