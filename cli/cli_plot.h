/* The latency percentile distribution of a histogram as a self-contained SVG picture: percentiles
   on the usual log scale of 1/(1-p) (0%, 90%, 99%, 99.9%, ...) across, latency in milliseconds up,
   as HdrHistogram's plots draw it, so a tail shows as what it is. */
#ifndef CLI_PLOT_H
#define CLI_PLOT_H

#include <stdio.h>

#include "cv_error.h"
#include "cv_histogram.h"

/* Writes the picture of latency_us (values in microseconds; borrowed) to out, with title (plain
   text, escaped here) above it. An empty histogram gives the axes and a note. Returns 0, or -1
   when out reported a write error. */
int cli_plot_percentiles (FILE *out, const cv_histogram_t *latency_us, const char *title) CV_MUST_CHECK;

#endif
