/* The figures of `conveyor eval`, from one (expected, predicted) pair per labelled query. */
#include "learn_eval.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "learn_metrics.h"

typedef struct {
    uint32_t expected, predicted;
    bool fast_path;
    int64_t elapsed_us;
} query_t;

struct _learn_eval_t {
    json_t *labels; /* name -> index */
    char **names;   /* index -> name */
    size_t label_count;
    json_t *methods; /* name -> {n, right} */
    query_t *queries;
    size_t count, capacity;
};

learn_eval_t *
learn_eval_new (void)
{
    learn_eval_t *self = cv_calloc (1, sizeof *self);
    self->labels = json_object ();
    self->methods = json_object ();
    return self;
}

void
learn_eval_destroy (learn_eval_t **self_p)
{
    assert (self_p);
    learn_eval_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->labels);
    json_decref (self->methods);
    for (size_t i = 0; i < self->label_count; i++)
        free (self->names[i]);
    free (self->names);
    free (self->queries);
    free (self);
    *self_p = NULL;
}

static uint32_t
s_label (learn_eval_t *self, const char *name)
{
    json_t *known = json_object_get (self->labels, name);
    if (known)
        return (uint32_t) json_integer_value (known);
    self->names = cv_realloc (self->names, (self->label_count + 1) * sizeof *self->names);
    self->names[self->label_count] = cv_strdup (name);
    json_object_set_new (self->labels, name, json_integer ((json_int_t) self->label_count));
    return (uint32_t) self->label_count++;
}

void
learn_eval_add (learn_eval_t *self, const char *expected, const char *predicted, bool fast_path, const char *method,
                int64_t elapsed_us)
{
    assert (self && expected && predicted && method);
    if (self->count == self->capacity) {
        self->capacity = self->capacity ? 2 * self->capacity : 1024;
        self->queries = cv_realloc (self->queries, self->capacity * sizeof *self->queries);
    }
    query_t *query = &self->queries[self->count++];
    query->expected = s_label (self, expected);
    query->predicted = s_label (self, predicted);
    query->fast_path = fast_path;
    query->elapsed_us = elapsed_us;
    json_t *seen = json_object_get (self->methods, method);
    if (!seen) {
        seen = json_pack ("{s:I, s:I}", "n", (json_int_t) 0, "right", (json_int_t) 0);
        json_object_set_new (self->methods, method, seen);
    }
    json_object_set_new (seen, "n", json_integer (json_integer_value (json_object_get (seen, "n")) + 1));
    json_object_set_new (
        seen, "right",
        json_integer (json_integer_value (json_object_get (seen, "right")) + (query->expected == query->predicted)));
}

size_t
learn_eval_count (const learn_eval_t *self)
{
    return self->count;
}

/* Accuracy and macro-F1 of the queries so far (learn_metrics_score). */
static void
s_score (const learn_eval_t *self, double *accuracy, double *macro_f1)
{
    size_t count = self->count ? self->count : 1;
    uint32_t *expected = cv_malloc (count * sizeof *expected), *predicted = cv_malloc (count * sizeof *predicted);
    for (size_t i = 0; i < self->count; i++) {
        expected[i] = self->queries[i].expected;
        predicted[i] = self->queries[i].predicted;
    }
    learn_metrics_score (expected, predicted, self->count, self->label_count, accuracy, macro_f1);
    free (expected);
    free (predicted);
}

double
learn_eval_accuracy (const learn_eval_t *self)
{
    double accuracy, macro_f1;
    s_score (self, &accuracy, &macro_f1);
    return accuracy;
}

double
learn_eval_macro_f1 (const learn_eval_t *self)
{
    double accuracy, macro_f1;
    s_score (self, &accuracy, &macro_f1);
    return macro_f1;
}

static int
s_compare_us (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of the latencies. */
static int64_t
s_percentile (const int64_t *sorted, size_t count, double q)
{
    if (!count)
        return 0;
    size_t rank = (size_t) ceil (q * (double) count);
    return sorted[rank ? rank - 1 : 0];
}

typedef struct {
    uint32_t expected, predicted;
    size_t count;
} confusion_t;

static int
s_compare_confusions (const void *a, const void *b)
{
    const confusion_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->expected != y->expected ? (x->expected < y->expected ? -1 : 1)
                                      : (x->predicted < y->predicted ? -1 : x->predicted > y->predicted);
}

json_t *
learn_eval_json (const learn_eval_t *self, size_t confusions)
{
    size_t count = self->count ? self->count : 1;
    int64_t *latencies = cv_malloc (count * sizeof *latencies);
    bool *fast = cv_malloc (count * sizeof *fast), *correct = cv_malloc (count * sizeof *correct);
    for (size_t i = 0; i < self->count; i++) {
        const query_t *query = &self->queries[i];
        fast[i] = query->fast_path;
        correct[i] = query->expected == query->predicted;
        latencies[i] = query->elapsed_us;
    }
    qsort (latencies, self->count, sizeof *latencies, s_compare_us);
    double coverage, fast_accuracy, accuracy, macro_f1;
    learn_metrics_kept (fast, correct, self->count, &coverage, &fast_accuracy);
    free (fast);
    free (correct);
    s_score (self, &accuracy, &macro_f1);

    /* Every (expected, predicted) pair that is wrong, counted, the most frequent first. */
    size_t pairs = self->label_count * self->label_count;
    size_t *counts = cv_calloc (pairs ? pairs : 1, sizeof *counts);
    for (size_t i = 0; i < self->count; i++)
        if (self->queries[i].expected != self->queries[i].predicted)
            counts[self->queries[i].expected * self->label_count + self->queries[i].predicted]++;
    confusion_t *list = cv_malloc ((pairs ? pairs : 1) * sizeof *list);
    size_t listed = 0;
    for (size_t pair = 0; pair < pairs; pair++)
        if (counts[pair])
            list[listed++] = (confusion_t){(uint32_t) (pair / self->label_count), (uint32_t) (pair % self->label_count),
                                           counts[pair]};
    qsort (list, listed, sizeof *list, s_compare_confusions);
    json_t *top = json_array ();
    for (size_t i = 0; i < listed && i < confusions; i++)
        json_array_append_new (top,
                               json_pack ("{s:s, s:s, s:I}", "expected", self->names[list[i].expected], "predicted",
                                          self->names[list[i].predicted], "count", (json_int_t) list[i].count));
    free (list);
    free (counts);

    /* Per method: how many it decided and how many of those were right. */
    json_t *methods = json_object ();
    const char *method;
    json_t *tally;
    json_object_foreach (self->methods, method, tally) {
        json_int_t n = json_integer_value (json_object_get (tally, "n"));
        json_int_t right = json_integer_value (json_object_get (tally, "right"));
        json_object_set_new (
            methods, method,
            json_pack ("{s:I, s:f}", "n", n, "accuracy", learn_metrics_accuracy ((size_t) right, (size_t) n)));
    }
    json_t *report =
        json_pack ("{s:I, s:f, s:f, s:{s:f, s:f}, s:{s:I, s:I, s:I}, s:o, s:o}", "n", (json_int_t) self->count,
                   "accuracy", accuracy, "macro_f1", macro_f1, "fast_path", "coverage", coverage, "accuracy",
                   fast_accuracy, "latency_us", "p50", (json_int_t) s_percentile (latencies, self->count, 0.50), "p99",
                   (json_int_t) s_percentile (latencies, self->count, 0.99), "max",
                   (json_int_t) (self->count ? latencies[self->count - 1] : 0), "methods", methods, "confusions", top);
    free (latencies);
    return report;
}

void
learn_eval_print (const learn_eval_t *self, size_t confusions, FILE *out)
{
    json_t *report = learn_eval_json (self, confusions);
    json_t *fast = json_object_get (report, "fast_path"), *latency = json_object_get (report, "latency_us");
    fprintf (out, "queries      %lld\n", (long long) json_integer_value (json_object_get (report, "n")));
    fprintf (out, "accuracy     %.4f\n", json_real_value (json_object_get (report, "accuracy")));
    fprintf (out, "macro-F1     %.4f\n", json_real_value (json_object_get (report, "macro_f1")));
    fprintf (out, "fast path    %.1f%% of queries, %.4f accurate (rules, and the model above its threshold)\n",
             100.0 * json_real_value (json_object_get (fast, "coverage")),
             json_real_value (json_object_get (fast, "accuracy")));
    fprintf (out, "latency      p50 %lld us, p99 %lld us, max %lld us\n",
             (long long) json_integer_value (json_object_get (latency, "p50")),
             (long long) json_integer_value (json_object_get (latency, "p99")),
             (long long) json_integer_value (json_object_get (latency, "max")));
    fprintf (out, "by method   ");
    const char *method;
    json_t *tally;
    json_object_foreach (json_object_get (report, "methods"), method, tally)
        fprintf (out, " %s %lld (%.4f accurate)", method, (long long) json_integer_value (json_object_get (tally, "n")),
                 json_real_value (json_object_get (tally, "accuracy")));
    fprintf (out, "\nconfusions that cost most (expected -> predicted):\n");
    size_t index;
    json_t *pair;
    json_array_foreach (json_object_get (report, "confusions"), index, pair)
        fprintf (out, "  %4lld  %s -> %s\n", (long long) json_integer_value (json_object_get (pair, "count")),
                 json_string_value (json_object_get (pair, "expected")),
                 json_string_value (json_object_get (pair, "predicted")));
    json_decref (report);
}

void
learn_eval_test (bool verbose)
{
    learn_eval_t *eval = learn_eval_new ();
    assert (learn_eval_count (eval) == 0 && learn_eval_accuracy (eval) == 0.0);
    /* a: 3 queries, 2 right; b: 2 queries, 1 right (the other taken as a); c: predicted once, never expected */
    learn_eval_add (eval, "a", "a", true, "rule", 10);
    learn_eval_add (eval, "a", "a", true, "model", 20);
    learn_eval_add (eval, "a", "c", false, "fallback", 30);
    learn_eval_add (eval, "b", "b", true, "model", 40);
    learn_eval_add (eval, "b", "a", true, "model", 1000);
    assert (learn_eval_count (eval) == 5);
    assert (fabs (learn_eval_accuracy (eval) - 0.6) < 1e-12);
    /* F1: a = 2*2/(3+3) = 0.6667, b = 2*1/(2+1) = 0.6667, c = 0 -> mean 0.4444 */
    assert (fabs (learn_eval_macro_f1 (eval) - (4.0 / 9.0)) < 1e-9);
    json_t *report = learn_eval_json (eval, 10);
    assert (json_integer_value (json_object_get (report, "n")) == 5);
    json_t *fast = json_object_get (report, "fast_path");
    assert (fabs (json_real_value (json_object_get (fast, "coverage")) - 0.8) < 1e-12);
    assert (fabs (json_real_value (json_object_get (fast, "accuracy")) - 0.75) < 1e-12);
    json_t *latency = json_object_get (report, "latency_us");
    assert (json_integer_value (json_object_get (latency, "p50")) == 30);
    assert (json_integer_value (json_object_get (latency, "p99")) == 1000);
    json_t *model = json_object_get (json_object_get (report, "methods"), "model");
    assert (json_integer_value (json_object_get (model, "n")) == 3);
    assert (fabs (json_real_value (json_object_get (model, "accuracy")) - 2.0 / 3.0) < 1e-12);
    json_t *confusions = json_object_get (report, "confusions");
    assert (json_array_size (confusions) == 2);
    assert (strcmp (json_string_value (json_object_get (json_array_get (confusions, 0), "expected")), "a") == 0);
    json_decref (report);
    report = learn_eval_json (eval, 1);
    assert (json_array_size (json_object_get (report, "confusions")) == 1);
    json_decref (report);
    if (verbose)
        learn_eval_print (eval, 5, stdout);
    learn_eval_destroy (&eval);
    assert (!eval);
    learn_eval_destroy (&eval);
    if (verbose)
        printf ("learn_eval: ok\n");
}
