/* Metrics: counters, gauges and histograms with labels, rendered in Prometheus' text exposition
   format (version 0.0.4) for a scrape of /metrics (cv_metrics_http).

   A registry holds families (a name, its help, its type, its label names); a family holds series,
   one per set of label values, made on first use and kept for the process's life. Recording is
   lock-free: a series is a few atomics, so the hot path looks its series up once (or per call,
   under the family's lock, for labels known only then) and adds to it. A family has at most
   CV_METRICS_MAX_SERIES series: label values must come from a bounded set (an intent's name, a
   rung, a rule; never a user id), and past the bound every new set is counted in one series whose
   labels all say "_overflow", so that nothing is lost and the scrape stays small.

   Names follow Prometheus' conventions (checked when a family is made: [a-zA-Z_:][a-zA-Z0-9_:]*,
   label names [a-zA-Z_][a-zA-Z0-9_]*); the caller gives the unit suffixes (_total, _seconds,
   _bytes). Making a family twice with the same name, type and labels returns the first (services
   made twice in one process, as tests make them, share their families); with another type or
   other labels it is a programming error and aborts.

   cv_metrics_process is the process's registry, which every service's families go to and the
   process's /metrics shows. Thread-safe throughout. */
#ifndef CV_METRICS_H
#define CV_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CV_METRICS_MAX_SERIES 2000 /* per family */
#define CV_METRICS_MAX_LABELS 4    /* per family */
#define CV_METRICS_MAX_BUCKETS 24  /* per histogram, besides +Inf */

typedef struct _cv_metrics_t cv_metrics_t;
typedef struct _cv_metric_family_t cv_metric_family_t;
typedef struct _cv_metric_t cv_metric_t;

/* The process's registry: made on first use, never freed. */
cv_metrics_t *cv_metrics_process (void);

/* A registry of one's own (tests, a benchmark). */
cv_metrics_t *cv_metrics_new (void);
void cv_metrics_destroy (cv_metrics_t **self_p);

/* A family: labels is the label names, comma-separated ("rung,outcome"), or NULL for none. */
cv_metric_family_t *cv_metrics_counter (cv_metrics_t *self, const char *name, const char *help, const char *labels);
cv_metric_family_t *cv_metrics_gauge (cv_metrics_t *self, const char *name, const char *help, const char *labels);
/* A histogram's buckets are bounds (count of them, increasing), each counting the observations at
   or below it, and +Inf. */
cv_metric_family_t *cv_metrics_histogram (cv_metrics_t *self, const char *name, const char *help, const char *labels,
                                          const double *bounds, size_t count);

/* conveyor_cache_lookups_total{tier, result}: every cache's hits and misses, tier naming the cache
   (llm: the LLM client's answers; tool: the gatherer's results), one family for all of them. */
cv_metric_family_t *cv_metrics_cache_lookups (cv_metrics_t *self);

/* conveyor_messages_rejected_total{code}: envelopes refused because they did not unpack or did not
   pass the schema's validation, by the error code they were refused with (INVALID, ...). */
cv_metric_family_t *cv_metrics_messages_rejected (cv_metrics_t *self);

/* Buckets for latencies in seconds, 100 µs to 10 s. */
extern const double cv_metrics_latency_buckets[];
extern const size_t cv_metrics_latency_bucket_count;

/* The series of family for the label values (as many as it has label names, in their order; any
   UTF-8 text), made on first use. Never NULL. */
cv_metric_t *cv_metric_with (cv_metric_family_t *family, ...);

/* Whether the process records at all (default on): off, every add, set and observe does nothing,
   so that what recording costs can be measured (a service's --telemetry false). */
void cv_metrics_set_recording (bool on);

/* A counter's or a gauge's series goes up by amount (a counter's must not be negative). */
void cv_metric_add (cv_metric_t *self, double amount);
/* A gauge's series is value. */
void cv_metric_set (cv_metric_t *self, double value);
/* A histogram's series counts value. */
void cv_metric_observe (cv_metric_t *self, double value);
/* A counter's or gauge's value, a histogram's count: for tests. */
double cv_metric_value (const cv_metric_t *self);

/* Writes every family with its series, in the order they were made, in the text format. */
void cv_metrics_render (cv_metrics_t *self, FILE *out);

void cv_metrics_test (bool verbose);

#endif
