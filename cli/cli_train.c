/* `conveyor train`: the intent model trained on a labelled CSV file, written atomically, reported. */
#include "cli_train.h"

#include <assert.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_command.h"
#include "cv_alloc.h"
#include "intent_model_file.h"
#include "learn_examples.h"
#include "learn_train.h"

#define COMMAND "train"

/* The options. Those left without a default here take learn_train_settings_default's, filled
   in by s_defaults, so the command and the library cannot drift apart. */
static cv_setting_t s_settings[] = {
    {"data", CV_SETTING_STRING, NULL, 0, 0,
     "labelled examples: CSV (RFC 4180), a header naming columns text, category"},
    {"out", CV_SETTING_STRING, NULL, 0, 0, "the model file to write (atomically: a temporary file, renamed)"},
    {"cv", CV_SETTING_INT, "0", 0, LEARN_TRAIN_MAX_FOLDS,
     "K >= 2: choose --c, --char-min/max by K-fold CV; 0: use those given"},
    {"folds", CV_SETTING_INT, NULL, 2, LEARN_TRAIN_MAX_FOLDS,
     "without --cv: folds for the accuracy reported and the confidence map"},
    {"seed", CV_SETTING_INT, NULL, 0, 2147483647, "folds and solver order: the same seed, the same model"},
    {"coverage", CV_SETTING_STRING, NULL, 0, 0, "share of traffic (0..1] the confidence threshold keeps on the model"},
    {"c", CV_SETTING_STRING, NULL, 0, 0, "the SVM's cost: larger follows the training data more closely"},
    {"loss", CV_SETTING_STRING, NULL, 0, 0, "the SVM's loss: squared-hinge or hinge"},
    {"epochs", CV_SETTING_INT, NULL, 1, 100000, "passes of coordinate descent per label, at most"},
    {"tolerance", CV_SETTING_STRING, NULL, 0, 0, "the solver stops when its projected gradients are this close"},
    {"bits", CV_SETTING_INT, NULL, INTENT_FEATURES_BITS_MIN, INTENT_FEATURES_BITS_MAX,
     "features are hashed into 2^bits buckets"},
    {"word-ngrams", CV_SETTING_INT, NULL, 1, INTENT_FEATURES_WORD_MAX,
     "word n-grams up to: 1 words, 2 and pairs, 3 and triples"},
    {"char-min", CV_SETTING_INT, NULL, 0, INTENT_FEATURES_CHAR_MAX, "the shortest character n-gram (0: none)"},
    {"char-max", CV_SETTING_INT, NULL, 0, INTENT_FEATURES_CHAR_MAX, "the longest character n-gram (0: none)"},
    {"digits", CV_SETTING_STRING, NULL, 0, 0, "keep: as written; run: a run of digits is 0; shape: 0 each, up to four"},
    {"symbols", CV_SETTING_BOOL, NULL, 0, 0, "currency signs and emoji are words (--symbols=false: dropped)"},
    {"threads", CV_SETTING_INT, "0", 0, LEARN_TRAIN_MAX_THREADS, "labels fitted at once; 0: one per processor"},
    {"quiet", CV_SETTING_BOOL, "false", 0, 0, "no progress lines on stderr"},
};
#define SETTING_COUNT (sizeof s_settings / sizeof s_settings[0])

static const char *
s_digits_name (unsigned flags)
{
    switch (flags & INTENT_TEXT_DIGITS_MASK) {
    case INTENT_TEXT_DIGITS_KEEP:
        return "keep";
    case INTENT_TEXT_DIGITS_RUN:
        return "run";
    default:
        return "shape";
    }
}

/* Fills the defaults the table leaves to the library. */
static void
s_defaults (void)
{
    static char texts[16][32];
    learn_train_settings_t defaults;
    learn_train_settings_default (&defaults);
    const intent_features_settings_t *features = &defaults.features;
    size_t used = 0;
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        cv_setting_t *setting = &s_settings[i];
        const char *name = setting->name;
        if (setting->fallback || strcmp (name, "data") == 0 || strcmp (name, "out") == 0)
            continue;
        assert (used < 16);
        char *text = texts[used++];
        if (strcmp (name, "folds") == 0)
            snprintf (text, 32, "%u", defaults.folds);
        else if (strcmp (name, "seed") == 0)
            snprintf (text, 32, "%llu", (unsigned long long) defaults.seed);
        else if (strcmp (name, "coverage") == 0)
            snprintf (text, 32, "%g", defaults.coverage);
        else if (strcmp (name, "c") == 0)
            snprintf (text, 32, "%g", defaults.c);
        else if (strcmp (name, "loss") == 0)
            snprintf (text, 32, "%s", defaults.loss == LEARN_SOLVER_HINGE ? "hinge" : "squared-hinge");
        else if (strcmp (name, "epochs") == 0)
            snprintf (text, 32, "%u", defaults.epochs);
        else if (strcmp (name, "tolerance") == 0)
            snprintf (text, 32, "%g", defaults.tolerance);
        else if (strcmp (name, "bits") == 0)
            snprintf (text, 32, "%u", features->bits);
        else if (strcmp (name, "word-ngrams") == 0)
            snprintf (text, 32, "%u", features->word_max);
        else if (strcmp (name, "char-min") == 0)
            snprintf (text, 32, "%u", features->char_min);
        else if (strcmp (name, "char-max") == 0)
            snprintf (text, 32, "%u", features->char_max);
        else if (strcmp (name, "digits") == 0)
            snprintf (text, 32, "%s", s_digits_name (features->text_flags));
        else if (strcmp (name, "symbols") == 0)
            snprintf (text, 32, "%s", features->text_flags & INTENT_TEXT_SYMBOLS ? "true" : "false");
        else
            assert (false); /* a setting without a default, not handled here */
        setting->fallback = text;
    }
}

static const char s_summary[] =
    "Trains the intent worker's embedded classifier: one-vs-rest linear SVMs over hashed word,\n"
    "word-pair and character n-gram features of the normalised text, tf-idf weighted. Every fit is\n"
    "cross-validated on the training file: its out-of-fold predictions give the accuracy and\n"
    "macro-F1 reported, calibrate the confidence (from the margin between the two best labels) and\n"
    "choose the threshold that keeps --coverage of the traffic on the model. Progress goes to\n"
    "stderr, the report to stdout. The same data, settings and seed give the same model.";

/* Reads a number option within (min, max]; false after printing why not. */
static bool
s_number (const cv_settings_t *settings, const char *name, double min, double max, double *value)
{
    const char *text = cv_settings_string (settings, name);
    char *end = NULL;
    errno = 0;
    *value = text ? strtod (text, &end) : NAN;
    if (!text || errno || end == text || *end || !isfinite (*value) || !(*value > min && *value <= max)) {
        cli_command_fail (COMMAND, "--%s: '%s' is not a number in (%g, %g]", name, text ? text : "", min, max);
        return false;
    }
    return true;
}

/* Reads the options into settings; false after printing why not (a usage error). */
static bool
s_read (const cv_settings_t *options, learn_train_settings_t *settings, bool *grid)
{
    learn_train_settings_default (settings);
    if (cv_settings_positional_count (options) > 0) {
        cli_command_fail (COMMAND, "takes no arguments, got '%s' (see --help)", cv_settings_positional (options, 0));
        return false;
    }
    const char *required[] = {"data", "out"};
    for (size_t i = 0; i < 2; i++)
        if (!cv_settings_string (options, required[i]) || !*cv_settings_string (options, required[i])) {
            cli_command_fail (COMMAND, "--%s is required (see --help)", required[i]);
            return false;
        }
    long cv = cv_settings_int (options, "cv");
    if (cv == 1) {
        cli_command_fail (COMMAND, "--cv 1: cross-validation needs 2 folds or more (0 for none)");
        return false;
    }
    *grid = cv >= 2;
    settings->folds = (unsigned) (*grid ? cv : cv_settings_int (options, "folds"));
    settings->seed = (uint64_t) cv_settings_int (options, "seed");
    settings->epochs = (unsigned) cv_settings_int (options, "epochs");
    if (!s_number (options, "coverage", 0, 1, &settings->coverage) || !s_number (options, "c", 0, 1e6, &settings->c)
        || !s_number (options, "tolerance", 0, 1000, &settings->tolerance))
        return false;
    const char *loss = cv_settings_string (options, "loss");
    if (loss && strcmp (loss, "hinge") == 0)
        settings->loss = LEARN_SOLVER_HINGE;
    else if (loss && strcmp (loss, "squared-hinge") == 0)
        settings->loss = LEARN_SOLVER_SQUARED_HINGE;
    else {
        cli_command_fail (COMMAND, "--loss: '%s' is not squared-hinge or hinge", loss ? loss : "");
        return false;
    }
    intent_features_settings_t *features = &settings->features;
    features->bits = (unsigned) cv_settings_int (options, "bits");
    features->word_max = (unsigned) cv_settings_int (options, "word-ngrams");
    features->char_min = (unsigned) cv_settings_int (options, "char-min");
    features->char_max = (unsigned) cv_settings_int (options, "char-max");
    const char *digits = cv_settings_string (options, "digits");
    unsigned mode;
    if (digits && strcmp (digits, "keep") == 0)
        mode = INTENT_TEXT_DIGITS_KEEP;
    else if (digits && strcmp (digits, "run") == 0)
        mode = INTENT_TEXT_DIGITS_RUN;
    else if (digits && strcmp (digits, "shape") == 0)
        mode = INTENT_TEXT_DIGITS_SHAPE;
    else {
        cli_command_fail (COMMAND, "--digits: '%s' is not keep, run or shape", digits ? digits : "");
        return false;
    }
    features->text_flags = mode | (cv_settings_bool (options, "symbols") ? INTENT_TEXT_SYMBOLS : 0);
    long threads = cv_settings_int (options, "threads");
    if (threads == 0) {
        long processors = sysconf (_SC_NPROCESSORS_ONLN);
        threads = processors < 1 ? 1 : processors > LEARN_TRAIN_MAX_THREADS ? LEARN_TRAIN_MAX_THREADS : processors;
    }
    settings->threads = (unsigned) threads;
    cv_error_t err;
    if (learn_train_settings_check (settings, &err)) {
        cli_command_fail (COMMAND, "--%s: %s", strcmp (err.field, "char") == 0 ? "char-min" : err.field, err.message);
        return false;
    }
    return true;
}

static void
s_progress (const char *line, void *arg)
{
    fprintf (stderr, "conveyor %s: %s\n", COMMAND, line);
}

/* The report: one screen on stdout. */
static void
s_report (const learn_examples_t *train, const learn_train_report_t *report, const char *data, const char *out,
          size_t model_bytes, bool grid)
{
    const learn_train_settings_t *settings = &report->settings;
    const intent_features_settings_t *features = &settings->features;
    printf ("trained %s from %s: %zu examples, %zu labels\n", out, data, report->examples, report->labels);
    for (size_t i = 0; i < learn_examples_label_count (train); i++)
        if (strcmp (learn_examples_label (train, i), learn_examples_label_source (train, i)) != 0)
            printf ("label '%s' is named %s (intent names are made of A-Z a-z 0-9 _ . : -)\n",
                    learn_examples_label_source (train, i), learn_examples_label (train, i));
    printf ("settings: c %g, %s loss, 2^%u buckets, words 1-%u, characters %u-%u, digits %s, symbols %s, seed %llu",
            settings->c, settings->loss == LEARN_SOLVER_HINGE ? "hinge" : "squared-hinge", features->bits,
            features->word_max, features->char_min, features->char_max, s_digits_name (features->text_flags),
            features->text_flags & INTENT_TEXT_SYMBOLS ? "kept" : "dropped", (unsigned long long) settings->seed);
    if (grid)
        printf (" (the best of %zu by %zu-fold cross-validation)", report->candidates, report->folds);
    printf ("\n\n%zu-fold cross-validation, out of fold:\n  fold accuracy:", report->folds);
    for (size_t f = 0; f < report->folds; f++)
        printf (" %.4f", report->fold_accuracy[f]);
    printf ("\n  accuracy %.4f, macro-F1 %.4f\n\n", report->accuracy, report->macro_f1);
    printf ("fast path (a confidence at or above the threshold stays on the model):\n"
            "  coverage  threshold  covered  accuracy\n");
    for (size_t i = 0; i < LEARN_TRAIN_FAST_PATHS; i++) {
        const learn_metrics_fast_path_t *fast = &report->fast_path[i];
        printf ("  %7.0f%%  %9.4f  %6.1f%%  %7.2f%%\n", 100 * fast->coverage, fast->threshold, 100 * fast->covered,
                100 * fast->accuracy);
    }
    printf ("  the model's threshold: %.4f, for %.0f%% coverage (%.1f%% covered, %.2f%% accurate)\n\n",
            report->chosen.threshold, 100 * report->chosen.coverage, 100 * report->chosen.covered,
            100 * report->chosen.accuracy);
    printf ("model: %.1f MB, %zu buckets with weights, a confidence map of %zu knots\n",
            (double) model_bytes / (1024.0 * 1024.0), report->rows, report->knots);
    printf ("time: %.1f s in all, %.1f s for the final fit (%u thread%s, %u passes at most)\n", report->seconds,
            report->fit_seconds, settings->threads, settings->threads == 1 ? "" : "s", report->passes);
}

int
cli_train_run (int argc, char **argv)
{
    int rc = CLI_EXIT_OK;
    s_defaults ();
    cv_settings_t *options = cli_command_settings (COMMAND, "conveyor train --data FILE.csv --out MODEL", s_summary,
                                                   s_settings, SETTING_COUNT, argc, argv, &rc);
    if (!options)
        return rc;
    learn_train_settings_t settings;
    bool grid;
    if (!s_read (options, &settings, &grid)) {
        cv_settings_destroy (&options);
        return CLI_EXIT_USAGE;
    }
    char *data = cv_strdup (cv_settings_string (options, "data"));
    char *out = cv_strdup (cv_settings_string (options, "out"));
    bool quiet = cv_settings_bool (options, "quiet");
    cv_settings_destroy (&options);

    cv_error_t err;
    rc = CLI_EXIT_FAILED;
    /* find out now, not after the training, that the model cannot be written there */
    char *directory = cv_strdup (out);
    bool writable = access (dirname (directory), W_OK) == 0;
    free (directory);
    learn_examples_t *train = learn_examples_new ();
    intent_model_t *model = NULL;
    if (!writable)
        cli_command_fail (COMMAND, "cannot write the model to %s: %s", out, strerror (errno));
    else if (learn_examples_load (train, data, &err))
        cli_command_fail (COMMAND, "%s", err.message);
    else {
        learn_train_grid_t search;
        learn_train_grid_default (&search);
        learn_train_report_t report;
        model =
            learn_train_fit (train, &settings, grid ? &search : NULL, quiet ? NULL : s_progress, NULL, &report, &err);
        if (!model)
            cli_command_fail (COMMAND, "%s", err.message);
        else if (intent_model_file_save (model, out, &err))
            cli_command_fail (COMMAND, "cannot write the model: %s", err.message);
        else {
            s_report (train, &report, data, out, intent_model_file_size (model), grid);
            rc = CLI_EXIT_OK;
        }
    }
    intent_model_destroy (&model);
    learn_examples_destroy (&train);
    free (data);
    free (out);
    return rc;
}
