/* The figures of `conveyor eval`: accuracy, macro-F1, the confusions that cost most, the fast
   path's coverage and accuracy, and latency percentiles, from one (expected, predicted) pair per
   labelled query. Pure computation: the caller runs the queries. The accuracy, macro-F1 and fast
   path are learn_metrics', as the trainer reports them. */
#ifndef LEARN_EVAL_H
#define LEARN_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cv_assert.h"

typedef struct _learn_eval_t learn_eval_t;

/* No queries yet; the caller's, freed with learn_eval_destroy. */
learn_eval_t *learn_eval_new (void);
void learn_eval_destroy (learn_eval_t **self_p);

/* Records one query: the label it has, the one it got, whether the fast path decided it (a rule
   or the model above its threshold, no LLM), its method name and how long it took. */
void learn_eval_add (learn_eval_t *self, const char *expected, const char *predicted, bool fast_path,
                     const char *method, int64_t elapsed_us);

size_t learn_eval_count (const learn_eval_t *self);
double learn_eval_accuracy (const learn_eval_t *self);
/* The mean over labels (expected or predicted at least once) of their F1. */
double learn_eval_macro_f1 (const learn_eval_t *self);

/* Everything, as one JSON object: n, accuracy, macro_f1, fast_path {coverage, accuracy},
   latency_us {p50, p99, max}, methods {name: {n, accuracy}}, confusions [{expected, predicted, count}]
   (the most frequent `confusions`, most first). A new reference. */
json_t *learn_eval_json (const learn_eval_t *self, size_t confusions);

/* The same for a person, on out. */
void learn_eval_print (const learn_eval_t *self, size_t confusions, FILE *out);

void learn_eval_test (bool verbose);

#endif
