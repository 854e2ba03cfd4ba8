/* A latency percentile distribution drawn as SVG, by hand: axes, grid, labels and one polyline. */
#include "cli_plot.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>

/* The picture's size and the plot area inside it, in SVG user units (pixels). */
#define WIDTH 800
#define HEIGHT 500
#define LEFT 80
#define RIGHT (WIDTH - 30)
#define TOP 64
#define BOTTOM (HEIGHT - 64)
#define POINTS 480 /* samples along the percentile axis */

/* Writes text with XML's special characters escaped. */
static void
s_escaped (FILE *out, const char *text)
{
    for (const char *c = text; *c; c++)
        if (*c == '<')
            fputs ("&lt;", out);
        else if (*c == '>')
            fputs ("&gt;", out);
        else if (*c == '&')
            fputs ("&amp;", out);
        else if (*c == '"')
            fputs ("&quot;", out);
        else
            fputc (*c, out);
}

/* The smallest 1, 2 or 5 times a power of ten that is at least value (> 0). */
static double
s_nice_step (double value)
{
    double power = pow (10, floor (log10 (value)));
    double steps[] = {1, 2, 5, 10};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (steps[i] * power >= value * (1 - 1e-9))
            return steps[i] * power;
    return 10 * power;
}

/* "0%", "90%", "99%", "99.9%", "99.99%"... : the percentile 1 - 10^-decade. */
static void
s_percentile_label (int decade, char *label, size_t size)
{
    if (decade == 0)
        snprintf (label, size, "0%%");
    else if (decade == 1)
        snprintf (label, size, "90%%");
    else
        snprintf (label, size, "99.%.*s%%", decade - 2, "9999999999");
}

int
cli_plot_percentiles (FILE *out, const cv_histogram_t *latency_us, const char *title)
{
    assert (out && latency_us && title);
    uint64_t count = cv_histogram_count (latency_us);
    /* As many decades of 1/(1-p) as the values can fill: four at least (to 99.99%), six at most. */
    int decades = count > 1 ? (int) ceil (log10 ((double) count)) : 4;
    decades = decades < 4 ? 4 : decades > 6 ? 6 : decades;
    double max_ms = (double) cv_histogram_max (latency_us) / 1000.0;
    double step = s_nice_step (max_ms > 0 ? max_ms / 5 : 0.2);
    double top_ms = ceil (max_ms / step) * step;
    if (top_ms <= max_ms)
        top_ms += step;
    double x_scale = (double) (RIGHT - LEFT) / decades;
    double y_scale = (double) (BOTTOM - TOP) / top_ms;

    fprintf (out,
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\""
             " font-family=\"sans-serif\" font-size=\"12\">\n",
             WIDTH, HEIGHT, WIDTH, HEIGHT);
    fputs ("<title>", out);
    s_escaped (out, title);
    fputs ("</title>\n", out);
    fprintf (out, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", WIDTH, HEIGHT);
    fprintf (out, "<text x=\"%d\" y=\"24\" font-size=\"14\">", LEFT);
    s_escaped (out, title);
    fputs ("</text>\n", out);
    if (count > 0)
        fprintf (out,
                 "<text x=\"%d\" y=\"44\" fill=\"#444\">%llu requests: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms,"
                 " p99.9 %.3f ms, max %.3f ms</text>\n",
                 LEFT, (unsigned long long) count, cv_histogram_value_at (latency_us, 50) / 1000.0,
                 cv_histogram_value_at (latency_us, 90) / 1000.0, cv_histogram_value_at (latency_us, 99) / 1000.0,
                 cv_histogram_value_at (latency_us, 99.9) / 1000.0, max_ms);

    /* The grid and its labels: a line per decade across, per step up. */
    fputs ("<g stroke=\"#ddd\" stroke-width=\"1\">\n", out);
    for (int decade = 0; decade <= decades; decade++)
        fprintf (out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", LEFT + decade * x_scale, TOP,
                 LEFT + decade * x_scale, BOTTOM);
    for (double ms = 0; ms <= top_ms * (1 + 1e-9); ms += step)
        fprintf (out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", LEFT, BOTTOM - ms * y_scale, RIGHT,
                 BOTTOM - ms * y_scale);
    fputs ("</g>\n<g fill=\"#222\">\n", out);
    for (int decade = 0; decade <= decades; decade++) {
        char label[24];
        s_percentile_label (decade, label, sizeof label);
        fprintf (out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", LEFT + decade * x_scale,
                 BOTTOM + 18, label);
    }
    for (double ms = 0; ms <= top_ms * (1 + 1e-9); ms += step)
        fprintf (out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", LEFT - 8, BOTTOM - ms * y_scale + 4,
                 ms);
    fprintf (out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>\n", (LEFT + RIGHT) / 2,
             HEIGHT - 20);
    fprintf (out,
             "<text x=\"20\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 20 %d)\">latency (ms)</text>\n",
             (TOP + BOTTOM) / 2, (TOP + BOTTOM) / 2);
    fputs ("</g>\n", out);
    fprintf (out, "<path d=\"M%d %dV%dH%d\" fill=\"none\" stroke=\"#222\" stroke-width=\"1\"/>\n", LEFT, TOP, BOTTOM,
             RIGHT);

    /* The distribution: the latency at 1 - 10^-x for x evenly spread over the decades. */
    if (count == 0)
        fprintf (out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#a00\">no answered requests</text>\n",
                 (LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2);
    else {
        fputs ("<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\" points=\"", out);
        for (int i = 0; i <= POINTS; i++) {
            double x = (double) decades * i / POINTS;
            double ms = cv_histogram_value_at (latency_us, 100 * (1 - pow (10, -x))) / 1000.0;
            fprintf (out, "%s%.1f,%.1f", i ? " " : "", LEFT + x * x_scale, BOTTOM - ms * y_scale);
        }
        fputs ("\"/>\n", out);
    }
    fputs ("</svg>\n", out);
    fflush (out);
    return ferror (out) ? -1 : 0;
}
