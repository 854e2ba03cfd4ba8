/* Benchmark: what recording a metric costs on the hot path (cv_metrics).

     bench-metrics [ROUNDS]

   Per operation, in nanoseconds, averaged over ROUNDS (default 10,000,000) on one thread, then
   with 2 threads adding to the same series at once (the contended case):
     add         cv_metric_add on a series looked up once (a counter's hot path)
     with+add    cv_metric_with with two labels, then cv_metric_add (labels known only per call)
     observe     cv_metric_observe on a latency histogram's series
     render      one scrape's cv_metrics_render of 100 series, in µs
   Not a test: nothing is asserted. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cv_metrics.h"

static int64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
}

typedef struct {
    cv_metric_t *series;
    long rounds;
} s_adder_t;

static void *
s_adder (void *arg)
{
    s_adder_t *adder = arg;
    for (long i = 0; i < adder->rounds; i++)
        cv_metric_add (adder->series, 1);
    return NULL;
}

int
main (int argc, char **argv)
{
    long rounds = argc > 1 ? atol (argv[1]) : 10000000;
    if (rounds <= 0) {
        fprintf (stderr, "usage: bench-metrics [ROUNDS]\n");
        return 2;
    }
    cv_metrics_t *metrics = cv_metrics_new ();
    cv_metric_family_t *steps = cv_metrics_counter (metrics, "bench_steps_total", "Steps.", "rung,outcome");
    cv_metric_family_t *latency = cv_metrics_histogram (metrics, "bench_seconds", "Latency.", "stage",
                                                        cv_metrics_latency_buckets, cv_metrics_latency_bucket_count);
    cv_metric_t *series = cv_metric_with (steps, "template", "answered");
    int64_t started = s_now_ns ();
    for (long i = 0; i < rounds; i++)
        cv_metric_add (series, 1);
    printf ("add        %6.1f ns\n", (double) (s_now_ns () - started) / (double) rounds);

    started = s_now_ns ();
    for (long i = 0; i < rounds / 10; i++)
        cv_metric_add (cv_metric_with (steps, i & 1 ? "llm" : "template", "answered"), 1);
    printf ("with+add   %6.1f ns\n", (double) (s_now_ns () - started) / (double) (rounds / 10));

    cv_metric_t *stage = cv_metric_with (latency, "intent");
    started = s_now_ns ();
    for (long i = 0; i < rounds; i++)
        cv_metric_observe (stage, (double) (i % 1000) * 1e-5);
    printf ("observe    %6.1f ns\n", (double) (s_now_ns () - started) / (double) rounds);

    s_adder_t adder = {series, rounds};
    pthread_t threads[2];
    started = s_now_ns ();
    for (int i = 0; i < 2; i++)
        pthread_create (&threads[i], NULL, s_adder, &adder);
    for (int i = 0; i < 2; i++)
        pthread_join (threads[i], NULL);
    printf ("add, 2 threads on one series %6.1f ns per add\n", (double) (s_now_ns () - started) / (double) rounds);

    char name[32];
    for (int i = 0; i < 98; i++) {
        snprintf (name, sizeof name, "s%d", i);
        cv_metric_add (cv_metric_with (steps, name, "answered"), 1);
    }
    FILE *sink = fopen ("/dev/null", "w");
    started = s_now_ns ();
    for (int i = 0; i < 1000; i++)
        cv_metrics_render (metrics, sink);
    printf ("render     %6.1f us (about 100 series and a histogram)\n", (double) (s_now_ns () - started) / 1000 / 1000);
    fclose (sink);
    cv_metrics_destroy (&metrics);
    return 0;
}
