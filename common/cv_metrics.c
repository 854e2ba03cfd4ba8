/* Counters, gauges and histograms with labels, in Prometheus' text format (cv_metrics.h). */
#include "cv_metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "cv_alloc.h"
#include "cv_assert.h"

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_type_t;

static const char *const s_type_names[] = {"counter", "gauge", "histogram"};

/* A double kept as its bits, so that it can be atomic; added to by compare-and-swap. */
typedef _Atomic uint64_t s_double_t;

static double
s_load (const s_double_t *cell)
{
    uint64_t bits = atomic_load_explicit ((s_double_t *) cell, memory_order_relaxed);
    double value;
    memcpy (&value, &bits, sizeof value);
    return value;
}

static void
s_store (s_double_t *cell, double value)
{
    uint64_t bits;
    memcpy (&bits, &value, sizeof bits);
    atomic_store_explicit (cell, bits, memory_order_relaxed);
}

static void
s_add (s_double_t *cell, double amount)
{
    uint64_t old = atomic_load_explicit (cell, memory_order_relaxed), new;
    do {
        double value;
        memcpy (&value, &old, sizeof value);
        value += amount;
        memcpy (&new, &value, sizeof new);
    } while (!atomic_compare_exchange_weak_explicit (cell, &old, new, memory_order_relaxed, memory_order_relaxed));
}

struct _cv_metric_t {
    cv_metric_family_t *family;
    char *values[CV_METRICS_MAX_LABELS];
    s_double_t value;                                     /* a counter's or a gauge's; a histogram's sum */
    _Atomic uint64_t buckets[CV_METRICS_MAX_BUCKETS + 1]; /* a histogram's, not cumulative; +Inf last */
};

struct _cv_metric_family_t {
    char *name;
    char *help;
    s_type_t type;
    size_t label_count;
    char *labels[CV_METRICS_MAX_LABELS];
    double bounds[CV_METRICS_MAX_BUCKETS];
    size_t bound_count;
    pthread_mutex_t mutex; /* guards the series' table and list, not their values */
    zhashx_t *table;       /* the label values, joined by US (0x1f) -> cv_metric_t *, the list's */
    cv_metric_t **series;  /* in the order they were made */
    size_t series_count;
    cv_metric_t *overflow; /* past CV_METRICS_MAX_SERIES */
};

struct _cv_metrics_t {
    pthread_mutex_t mutex; /* guards the families' list */
    cv_metric_family_t **families;
    size_t family_count;
};

const double cv_metrics_latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const size_t cv_metrics_latency_bucket_count = sizeof cv_metrics_latency_buckets / sizeof *cv_metrics_latency_buckets;

cv_metrics_t *
cv_metrics_new (void)
{
    cv_metrics_t *self = cv_calloc (1, sizeof *self);
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

static void
s_series_destroy (cv_metric_t *series)
{
    for (size_t i = 0; i < CV_METRICS_MAX_LABELS; i++)
        free (series->values[i]);
    free (series);
}

static void
s_family_destroy (cv_metric_family_t *family)
{
    for (size_t i = 0; i < family->series_count; i++)
        s_series_destroy (family->series[i]);
    if (family->overflow)
        s_series_destroy (family->overflow);
    for (size_t i = 0; i < family->label_count; i++)
        free (family->labels[i]);
    zhashx_destroy (&family->table);
    pthread_mutex_destroy (&family->mutex);
    free (family->series);
    free (family->name);
    free (family->help);
    free (family);
}

void
cv_metrics_destroy (cv_metrics_t **self_p)
{
    assert (self_p);
    cv_metrics_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->family_count; i++)
        s_family_destroy (self->families[i]);
    free (self->families);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

static pthread_once_t s_process_once = PTHREAD_ONCE_INIT;
static cv_metrics_t *s_process;

static void
s_process_new (void)
{
    s_process = cv_metrics_new ();
}

cv_metrics_t *
cv_metrics_process (void)
{
    pthread_once (&s_process_once, s_process_new);
    return s_process;
}

static bool
s_name_valid (const char *name, bool colons)
{
    if (!name || !*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'
              || (colons && *c == ':')))
            return false;
    return true;
}

/* A new series of family with values (label_count of them, copied). */
static cv_metric_t *
s_series_new (cv_metric_family_t *family, const char *const *values)
{
    cv_metric_t *series = cv_calloc (1, sizeof *series);
    series->family = family;
    for (size_t i = 0; i < family->label_count; i++)
        series->values[i] = cv_strdup (values[i]);
    return series;
}

/* labels split at commas into family's names; true when they are valid and few enough. */
static bool
s_split_labels (cv_metric_family_t *family, const char *labels)
{
    if (!labels)
        return true;
    char *copy = cv_strdup (labels);
    bool valid = true;
    for (char *save = NULL, *label = strtok_r (copy, ",", &save); label && valid; label = strtok_r (NULL, ",", &save)) {
        valid = family->label_count < CV_METRICS_MAX_LABELS && s_name_valid (label, false) && strcmp (label, "le");
        if (valid)
            family->labels[family->label_count++] = cv_strdup (label);
    }
    free (copy);
    return valid && family->label_count > 0;
}

/* Whether family has the shape asked for again. */
static bool
s_same_shape (const cv_metric_family_t *family, s_type_t type, const cv_metric_family_t *asked)
{
    if (family->type != type || family->label_count != asked->label_count || family->bound_count != asked->bound_count)
        return false;
    for (size_t i = 0; i < family->label_count; i++)
        if (strcmp (family->labels[i], asked->labels[i]) != 0)
            return false;
    return memcmp (family->bounds, asked->bounds, family->bound_count * sizeof *family->bounds) == 0;
}

static cv_metric_family_t *
s_family (cv_metrics_t *self, s_type_t type, const char *name, const char *help, const char *labels,
          const double *bounds, size_t bound_count)
{
    assert (self && help);
    cv_assert_that (s_name_valid (name, true), "cv_metrics: %s is not a metric name", name ? name : "(null)");
    cv_assert_that (bound_count <= CV_METRICS_MAX_BUCKETS, "cv_metrics: %s has %zu buckets", name, bound_count);
    for (size_t i = 1; i < bound_count; i++)
        cv_assert_that (bounds[i] > bounds[i - 1], "cv_metrics: %s's buckets do not increase", name);
    cv_metric_family_t *family = cv_calloc (1, sizeof *family);
    pthread_mutex_init (&family->mutex, NULL);
    family->type = type;
    cv_assert_that (s_split_labels (family, labels), "cv_metrics: %s's labels \"%s\" are not label names", name,
                    labels);
    if (bound_count)
        memcpy (family->bounds, bounds, bound_count * sizeof *bounds);
    family->bound_count = bound_count;
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->family_count; i++)
        if (strcmp (self->families[i]->name, name) == 0) {
            cv_metric_family_t *known = self->families[i];
            pthread_mutex_unlock (&self->mutex);
            cv_assert_that (s_same_shape (known, type, family), "cv_metrics: %s is made again with another shape",
                            name);
            s_family_destroy (family);
            return known;
        }
    family->name = cv_strdup (name);
    family->help = cv_strdup (help);
    family->table = zhashx_new ();
    if (family->label_count == 0) { /* its one series shows from the start, at 0 */
        family->series = cv_malloc (sizeof *family->series);
        family->series[family->series_count++] = s_series_new (family, NULL);
    }
    self->families = cv_realloc (self->families, (self->family_count + 1) * sizeof *self->families);
    self->families[self->family_count++] = family;
    pthread_mutex_unlock (&self->mutex);
    return family;
}

cv_metric_family_t *
cv_metrics_counter (cv_metrics_t *self, const char *name, const char *help, const char *labels)
{
    return s_family (self, S_COUNTER, name, help, labels, NULL, 0);
}

cv_metric_family_t *
cv_metrics_gauge (cv_metrics_t *self, const char *name, const char *help, const char *labels)
{
    return s_family (self, S_GAUGE, name, help, labels, NULL, 0);
}

cv_metric_family_t *
cv_metrics_histogram (cv_metrics_t *self, const char *name, const char *help, const char *labels, const double *bounds,
                      size_t count)
{
    assert (bounds && count > 0);
    return s_family (self, S_HISTOGRAM, name, help, labels, bounds, count);
}

cv_metric_family_t *
cv_metrics_cache_lookups (cv_metrics_t *self)
{
    return cv_metrics_counter (self, "conveyor_cache_lookups_total",
                               "Cache lookups, by tier (llm: the LLM client's answers, tool: the gatherer's results) "
                               "and result: hit, miss.",
                               "tier,result");
}

cv_metric_family_t *
cv_metrics_messages_rejected (cv_metrics_t *self)
{
    return cv_metrics_counter (self, "conveyor_messages_rejected_total",
                               "Envelopes refused for not unpacking or not passing the schema's validation, by the "
                               "error code they were refused with.",
                               "code");
}

cv_metric_t *
cv_metric_with (cv_metric_family_t *family, ...)
{
    assert (family);
    if (family->label_count == 0)
        return family->series[0];
    const char *values[CV_METRICS_MAX_LABELS];
    char key[1024];
    size_t used = 0;
    va_list args;
    va_start (args, family);
    for (size_t i = 0; i < family->label_count; i++) {
        values[i] = va_arg (args, const char *);
        assert (values[i]);
        int wrote = snprintf (key + used, sizeof key - used, "%s\x1f", values[i]);
        used = wrote < 0 || (size_t) wrote >= sizeof key - used ? sizeof key - 1 : used + (size_t) wrote;
    }
    va_end (args);
    pthread_mutex_lock (&family->mutex);
    cv_metric_t *series = zhashx_lookup (family->table, key);
    if (!series && family->series_count < CV_METRICS_MAX_SERIES) {
        series = s_series_new (family, values);
        family->series = cv_realloc (family->series, (family->series_count + 1) * sizeof *family->series);
        family->series[family->series_count++] = series;
        zhashx_insert (family->table, key, series);
    } else if (!series) {
        if (!family->overflow) {
            const char *overflow[CV_METRICS_MAX_LABELS] = {"_overflow", "_overflow", "_overflow", "_overflow"};
            family->overflow = s_series_new (family, overflow);
        }
        series = family->overflow;
    }
    pthread_mutex_unlock (&family->mutex);
    return series;
}

static atomic_bool s_recording = true;

void
cv_metrics_set_recording (bool on)
{
    atomic_store (&s_recording, on);
}

void
cv_metric_add (cv_metric_t *self, double amount)
{
    assert (self && self->family->type != S_HISTOGRAM);
    assert (self->family->type == S_GAUGE || amount >= 0);
    if (!atomic_load_explicit (&s_recording, memory_order_relaxed))
        return;
    s_add (&self->value, amount);
}

void
cv_metric_set (cv_metric_t *self, double value)
{
    assert (self && self->family->type == S_GAUGE);
    if (!atomic_load_explicit (&s_recording, memory_order_relaxed))
        return;
    s_store (&self->value, value);
}

void
cv_metric_observe (cv_metric_t *self, double value)
{
    assert (self && self->family->type == S_HISTOGRAM);
    if (!atomic_load_explicit (&s_recording, memory_order_relaxed))
        return;
    const cv_metric_family_t *family = self->family;
    size_t bucket = 0;
    while (bucket < family->bound_count && value > family->bounds[bucket])
        bucket++;
    atomic_fetch_add_explicit (&self->buckets[bucket], 1, memory_order_relaxed);
    s_add (&self->value, value);
}

double
cv_metric_value (const cv_metric_t *self)
{
    assert (self);
    if (self->family->type != S_HISTOGRAM)
        return s_load (&self->value);
    uint64_t count = 0; /* the observations: every bucket's, as the rendered _count */
    for (size_t i = 0; i <= self->family->bound_count; i++)
        count += atomic_load_explicit ((_Atomic uint64_t *) &self->buckets[i], memory_order_relaxed);
    return (double) count;
}

/*  --------------------------------------------------------------------------
    The text format */

/* text with backslash and newline escaped, and the double quote too in a label value. */
static void
s_escaped (FILE *out, const char *text, bool quote)
{
    for (const char *c = text; *c; c++)
        if (*c == '\\')
            fputs ("\\\\", out);
        else if (*c == '\n')
            fputs ("\\n", out);
        else if (quote && *c == '"')
            fputs ("\\\"", out);
        else
            fputc (*c, out);
}

/* A number as the format writes it: +Inf, -Inf and NaN by name. */
static void
s_number (FILE *out, double value)
{
    if (isnan (value))
        fputs ("NaN", out);
    else if (isinf (value))
        fputs (value > 0 ? "+Inf" : "-Inf", out);
    else
        fprintf (out, "%.17g", value);
}

/* name{labels[,le="bound"]} */
static void
s_series_name (FILE *out, const cv_metric_family_t *family, const cv_metric_t *series, const char *suffix,
               const char *le)
{
    fprintf (out, "%s%s", family->name, suffix);
    if (family->label_count == 0 && !le)
        return;
    fputc ('{', out);
    for (size_t i = 0; i < family->label_count; i++) {
        fprintf (out, "%s%s=\"", i ? "," : "", family->labels[i]);
        s_escaped (out, series->values[i], true);
        fputc ('"', out);
    }
    if (le)
        fprintf (out, "%sle=\"%s\"", family->label_count ? "," : "", le);
    fputc ('}', out);
}

static void
s_render_series (FILE *out, const cv_metric_family_t *family, const cv_metric_t *series)
{
    if (family->type != S_HISTOGRAM) {
        s_series_name (out, family, series, "", NULL);
        fputc (' ', out);
        s_number (out, s_load (&series->value));
        fputc ('\n', out);
        return;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= family->bound_count; i++) {
        cumulative += atomic_load_explicit ((_Atomic uint64_t *) &series->buckets[i], memory_order_relaxed);
        char le[32];
        if (i < family->bound_count)
            snprintf (le, sizeof le, "%.15g", family->bounds[i]);
        else
            snprintf (le, sizeof le, "+Inf");
        s_series_name (out, family, series, "_bucket", le);
        fprintf (out, " %llu\n", (unsigned long long) cumulative);
    }
    s_series_name (out, family, series, "_sum", NULL);
    fputc (' ', out);
    s_number (out, s_load (&series->value));
    fputc ('\n', out);
    /* the count is the buckets' total as read, so that +Inf's bucket and the count agree */
    s_series_name (out, family, series, "_count", NULL);
    fprintf (out, " %llu\n", (unsigned long long) cumulative);
}

void
cv_metrics_render (cv_metrics_t *self, FILE *out)
{
    assert (self && out);
    pthread_mutex_lock (&self->mutex); /* a family made meanwhile would move the list */
    for (size_t f = 0; f < self->family_count; f++) {
        cv_metric_family_t *family = self->families[f];
        fprintf (out, "# HELP %s ", family->name);
        s_escaped (out, family->help, false);
        fprintf (out, "\n# TYPE %s %s\n", family->name, s_type_names[family->type]);
        pthread_mutex_lock (&family->mutex);
        for (size_t i = 0; i < family->series_count; i++)
            s_render_series (out, family, family->series[i]);
        if (family->overflow)
            s_render_series (out, family, family->overflow);
        pthread_mutex_unlock (&family->mutex);
    }
    pthread_mutex_unlock (&self->mutex);
}

/*  --------------------------------------------------------------------------
    Self-test */

static char *
s_rendered (cv_metrics_t *metrics)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cv_metrics_render (metrics, out);
    fclose (out);
    return text;
}

typedef struct {
    cv_metric_t *series;
    int times;
} s_adder_t;

static void *
s_adder (void *arg)
{
    s_adder_t *adder = arg;
    for (int i = 0; i < adder->times; i++)
        cv_metric_add (adder->series, 1);
    return NULL;
}

void
cv_metrics_test (bool verbose)
{
    /* recording off: nothing changes, and it counts again once on */
    {
        cv_metrics_t *off = cv_metrics_new ();
        cv_metric_t *counted = cv_metric_with (cv_metrics_counter (off, "test_off_total", "Off.", NULL));
        cv_metrics_set_recording (false);
        cv_metric_add (counted, 1);
        cv_metrics_set_recording (true);
        assert (cv_metric_value (counted) == 0);
        cv_metric_add (counted, 1);
        assert (cv_metric_value (counted) == 1);
        cv_metrics_destroy (&off);
    }

    cv_metrics_t *metrics = cv_metrics_new ();
    cv_metric_family_t *steps = cv_metrics_counter (metrics, "conveyor_reply_steps_total",
                                                    "Rungs of the reply's ladder tried.", "rung,outcome");
    cv_metric_family_t *up = cv_metrics_gauge (metrics, "conveyor_up", "Whether it serves.\nA gauge.", NULL);
    const double bounds[] = {0.001, 0.01, 0.1};
    cv_metric_family_t *latency =
        cv_metrics_histogram (metrics, "conveyor_stage_seconds", "A stage's time.", "stage", bounds, 3);
    cv_metric_add (cv_metric_with (steps, "llm", "skipped"), 1);
    cv_metric_add (cv_metric_with (steps, "template", "answered"), 2);
    cv_metric_add (cv_metric_with (steps, "llm", "skipped"), 1); /* the same series */
    cv_metric_set (cv_metric_with (up), 1);
    cv_metric_t *intent = cv_metric_with (latency, "intent");
    cv_metric_observe (intent, 0.0005);
    cv_metric_observe (intent, 0.001); /* a bound counts in its own bucket */
    cv_metric_observe (intent, 0.05);
    cv_metric_observe (intent, 7);
    cv_metric_add (cv_metric_with (steps, "a\"b\\c\nd", "answered"), 1); /* escaped */
    char *text = s_rendered (metrics);
    const char *expected = "# HELP conveyor_reply_steps_total Rungs of the reply's ladder tried.\n"
                           "# TYPE conveyor_reply_steps_total counter\n"
                           "conveyor_reply_steps_total{rung=\"llm\",outcome=\"skipped\"} 2\n"
                           "conveyor_reply_steps_total{rung=\"template\",outcome=\"answered\"} 2\n"
                           "conveyor_reply_steps_total{rung=\"a\\\"b\\\\c\\nd\",outcome=\"answered\"} 1\n"
                           "# HELP conveyor_up Whether it serves.\\nA gauge.\n"
                           "# TYPE conveyor_up gauge\n"
                           "conveyor_up 1\n"
                           "# HELP conveyor_stage_seconds A stage's time.\n"
                           "# TYPE conveyor_stage_seconds histogram\n"
                           "conveyor_stage_seconds_bucket{stage=\"intent\",le=\"0.001\"} 2\n"
                           "conveyor_stage_seconds_bucket{stage=\"intent\",le=\"0.01\"} 2\n"
                           "conveyor_stage_seconds_bucket{stage=\"intent\",le=\"0.1\"} 3\n"
                           "conveyor_stage_seconds_bucket{stage=\"intent\",le=\"+Inf\"} 4\n"
                           "conveyor_stage_seconds_sum{stage=\"intent\"} 7.0514999999999999\n"
                           "conveyor_stage_seconds_count{stage=\"intent\"} 4\n";
    cv_assert_that (strcmp (text, expected) == 0, "rendered:\n%s", text);
    free (text);

    /* made again with the same shape: the same family; its series go on */
    assert (cv_metrics_counter (metrics, "conveyor_reply_steps_total", "again", "rung,outcome") == steps);
    assert (cv_metric_value (cv_metric_with (steps, "llm", "skipped")) == 2);
    assert (cv_metric_value (intent) == 4);

    /* past the bound, one overflow series */
    cv_metric_family_t *many = cv_metrics_counter (metrics, "conveyor_many_total", "Many.", "id");
    char id[16];
    for (int i = 0; i < CV_METRICS_MAX_SERIES + 5; i++) {
        snprintf (id, sizeof id, "%d", i);
        cv_metric_add (cv_metric_with (many, id), 1);
    }
    assert (cv_metric_value (cv_metric_with (many, "another")) == 5);
    text = s_rendered (metrics);
    assert (strstr (text, "conveyor_many_total{id=\"_overflow\"} 5\n"));
    free (text);

    /* threads add without losing any */
    s_adder_t adder = {cv_metric_with (steps, "static", "answered"), 100000};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        pthread_create (&threads[i], NULL, s_adder, &adder);
    for (int i = 0; i < 4; i++)
        pthread_join (threads[i], NULL);
    assert (cv_metric_value (adder.series) == 400000);
    cv_metrics_destroy (&metrics);
    assert (cv_metrics_process () == cv_metrics_process ());
    if (verbose)
        printf ("cv_metrics: ok\n");
}
