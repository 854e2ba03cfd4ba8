/* Benchmark: single-query latency of the intent model's prediction, and of the whole intent
   worker logic (slots, rules, model), on the texts of a labelled CSV, one query at a time on the
   calling thread. Run it pinned to one core (bench/intent.sh does: taskset -c 0).

     bench-intent-latency MODEL DATA.csv AGENT.yaml [ROUNDS]

   Prints p50, p90, p99 and max in microseconds for each. Not a test: nothing is asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_alloc.h"
#include "intent_classifier.h"
#include "intent_model_file.h"
#include "learn_examples.h"

static int64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static void
s_report (const char *what, int64_t *samples, size_t count)
{
    qsort (samples, count, sizeof *samples, s_compare);
#define AT(q) ((double) samples[(size_t) ((q) * (double) (count - 1))] / 1000.0)
    printf ("%-28s n=%zu  p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us\n", what, count, AT (0.50), AT (0.90),
            AT (0.99), (double) samples[count - 1] / 1000.0);
}

int
main (int argc, char **argv)
{
    if (argc < 4) {
        fprintf (stderr, "usage: bench-intent-latency MODEL DATA.csv AGENT.yaml [ROUNDS]\n");
        return 2;
    }
    size_t rounds = argc > 4 ? (size_t) atoi (argv[4]) : 3;
    cv_error_t err;
    intent_model_t *model = intent_model_file_load (argv[1], &err);
    learn_examples_t *data = learn_examples_new ();
    cv_config_t *agent = cv_config_load (argv[3], &err);
    if (!model || !agent || learn_examples_load (data, argv[2], &err)) {
        fprintf (stderr, "bench-intent-latency: %s\n", err.message);
        return 1;
    }
    intent_classifier_t *classifier = intent_classifier_new (agent, argv[1], NULL, &err);
    if (!classifier) {
        fprintf (stderr, "bench-intent-latency: %s\n", err.message);
        return 1;
    }
    size_t count = learn_examples_size (data);
    int64_t *samples = cv_malloc (count * rounds * sizeof *samples);
    intent_scratch_t *scratch = intent_scratch_new (model);
    intent_prediction_t prediction;
    size_t n = 0;
    for (size_t round = 0; round < rounds; round++)
        for (size_t i = 0; i < count; i++) {
            size_t size;
            const char *label;
            const char *text = learn_examples_example (data, i, &size, &label);
            int64_t started = s_now_ns ();
            intent_model_predict (model, scratch, text, size, 5, &prediction);
            samples[n++] = s_now_ns () - started;
        }
    s_report ("model predict (top 5)", samples, n);
    n = 0;
    for (size_t round = 0; round < rounds; round++)
        for (size_t i = 0; i < count; i++) {
            size_t size;
            const char *label;
            const char *text = learn_examples_example (data, i, &size, &label);
            intent_result_t result;
            int64_t started = s_now_ns ();
            if (intent_classifier_classify (classifier, text, 0, NULL, 2026, 11, 21, &result, &err) == 0)
                samples[n++] = s_now_ns () - started;
            intent_result_reset (&result);
        }
    s_report ("worker logic (slots+rules+model)", samples, n);
    free (samples);
    intent_scratch_destroy (&scratch);
    intent_classifier_destroy (&classifier);
    intent_model_destroy (&model);
    learn_examples_destroy (&data);
    cv_config_destroy (&agent);
    return 0;
}
