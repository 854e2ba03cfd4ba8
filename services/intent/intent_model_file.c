/* The intent model's file: the model written to its versioned, checksummed format, and the
   entry points that read it back (intent_model_reader does the reading). */
#include "intent_model_file.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "intent_model_format.h"
#include "intent_model_reader.h"
#include "intent_model_sample.h"

/* The size and checksum of the self-test's model file, as this format has always written it. */
#define GOLDEN_SIZE 311
#define GOLDEN_CRC 0x185885c6u

size_t
intent_model_file_size (const intent_model_t *model)
{
    assert (model);
    size_t labels = intent_model_label_count (model), labels_bytes = 0;
    for (size_t i = 0; i < labels; i++)
        labels_bytes += strlen (intent_model_label (model, i));
    const float *margins, *probabilities;
    size_t knots = intent_model_knots (model, &margins, &probabilities);
    return (size_t) intent_model_format_size (labels, labels_bytes, intent_model_rows (model), knots);
}

uint8_t *
intent_model_file_encode (const intent_model_t *model, size_t *size)
{
    assert (model && size);
    uint64_t total = intent_model_file_size (model);
    uint8_t *data = cv_malloc (total);
    const intent_features_settings_t *features = intent_model_features (model);
    size_t labels = intent_model_label_count (model), rows = intent_model_rows (model);
    const float *margins, *probabilities;
    size_t knots = intent_model_knots (model, &margins, &probabilities);
    uint8_t *p = data;
    memcpy (p, INTENT_MODEL_MAGIC, INTENT_MODEL_FORMAT_MAGIC_SIZE);
    p += INTENT_MODEL_FORMAT_MAGIC_SIZE;
    p = intent_model_format_put_u32 (p, INTENT_MODEL_VERSION);
    p = intent_model_format_put_u32 (p, (uint32_t) total);
    p = intent_model_format_put_u32 (p, (uint32_t) (total >> 32));
    p = intent_model_format_put_u32 (p, features->text_flags);
    *p++ = (uint8_t) features->bits;
    *p++ = (uint8_t) features->word_max;
    *p++ = (uint8_t) features->char_min;
    *p++ = (uint8_t) features->char_max;
    p = intent_model_format_put_u32 (p, (uint32_t) labels);
    p = intent_model_format_put_u32 (p, (uint32_t) rows);
    p = intent_model_format_put_u32 (p, (uint32_t) knots);
    p = intent_model_format_put_f32 (p, intent_model_default_idf (model));
    p = intent_model_format_put_f32 (p, intent_model_coverage (model));
    p = intent_model_format_put_f32 (p, intent_model_threshold (model));
    assert (p == data + INTENT_MODEL_FORMAT_HEADER_SIZE);
    for (size_t i = 0; i < labels; i++) {
        const char *label = intent_model_label (model, i);
        size_t length = strlen (label);
        *p++ = (uint8_t) length;
        memcpy (p, label, length);
        p += length;
    }
    p = intent_model_format_put_f32s (p, intent_model_bias (model), labels);
    p = intent_model_format_put_f32s (p, margins, knots);
    p = intent_model_format_put_f32s (p, probabilities, knots);
    for (size_t row = 0; row < rows; row++)
        p = intent_model_format_put_u32 (p, intent_model_row (model, row, NULL, NULL));
    for (size_t row = 0; row < rows; row++) {
        float idf;
        intent_model_row (model, row, &idf, NULL);
        p = intent_model_format_put_f32 (p, idf);
    }
    float weights[INTENT_MODEL_MAX_LABELS];
    for (size_t row = 0; row < rows; row++) {
        intent_model_row (model, row, NULL, weights);
        p = intent_model_format_put_f32s (p, weights, labels);
    }
    p = intent_model_format_put_u32 (p, intent_model_format_crc (0, data, total - INTENT_MODEL_FORMAT_CRC_SIZE));
    assert (p == data + total);
    *size = total;
    return data;
}

intent_model_t *
intent_model_file_decode (const void *bytes, size_t size, cv_error_t *err)
{
    assert (bytes || size == 0);
    static const uint8_t none[1];
    return intent_model_reader_read (bytes ? bytes : none, NULL, size, err);
}

intent_model_t *
intent_model_file_load (const char *path, cv_error_t *err)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", path, strerror (errno));
        return NULL;
    }
    intent_model_t *self = NULL;
    struct stat status;
    if (fstat (fileno (file), &status) || !S_ISREG (status.st_mode))
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: not a regular file", path);
    else if ((uint64_t) status.st_size > INTENT_MODEL_MAX_BYTES)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %lld bytes, more than a model may have", path,
                      (long long) status.st_size);
    else {
        self = intent_model_reader_read (NULL, file, (size_t) status.st_size, err);
        if (!self)
            cv_error_prefix (err, "%s", path);
    }
    fclose (file);
    return self;
}

/* Writes size bytes to fd; -1 with errno on failure. */
static int
s_write_all (int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write (fd, data, size);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

int
intent_model_file_save (const intent_model_t *model, const char *path, cv_error_t *err)
{
    assert (model && path);
    size_t size;
    uint8_t *data = intent_model_file_encode (model, &size);
    char *temporary = cv_asprintf ("%s.tmp.XXXXXX", path);
    int rc = 0;
    int fd = mkstemp (temporary);
    if (fd < 0)
        rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: cannot create a file beside it: %s", path, strerror (errno));
    else {
        if (s_write_all (fd, data, size) || fchmod (fd, 0644) || fsync (fd))
            rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", temporary, strerror (errno));
        if (close (fd) && rc == 0)
            rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", temporary, strerror (errno));
        if (rc == 0 && rename (temporary, path))
            rc = cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %s", path, strerror (errno));
        if (rc)
            unlink (temporary);
        else {
            /* the rename itself survives a crash once the directory is synced */
            char *copy = cv_strdup (path);
            int directory = copy ? open (dirname (copy), O_RDONLY | O_DIRECTORY) : -1;
            if (directory >= 0) {
                fsync (directory);
                close (directory);
            }
            free (copy);
        }
    }
    free (temporary);
    free (data);
    return rc;
}

/* --- self-test --- */

static const char *const s_labels[] = {"label0", "label1", "label2", "label3", "label4",
                                       "label5", "label6", "label7", "label8"};
#define LABELS INTENT_MODEL_SAMPLE_LABELS

/* The sample model (intent_model_sample), with its own idf, biases and default idf, a confidence
   map and a threshold. */
static intent_model_t *
s_test_model (void)
{
    float idf[3] = {1.5f, 1.25f, 2.0f}, bias[LABELS] = {0.01f, -0.02f};
    intent_model_t *model = intent_model_sample_new (s_labels, idf, bias, 3.0f, NULL, NULL);
    cv_error_t err;
    float margins[] = {0.0f, 0.5f, 1.0f}, probabilities[] = {0.2f, 0.6f, 0.95f};
    assert (intent_model_set_calibration (model, 3, margins, probabilities, &err) == 0);
    assert (intent_model_set_threshold (model, 0.8f, 0.5f, &err) == 0);
    return model;
}

/* Asserts that decoding size bytes at data fails, with a message containing expected. */
static void
s_expect_refused (const uint8_t *data, size_t size, const char *expected, const char *what)
{
    cv_error_t err;
    intent_model_t *model = intent_model_file_decode (data, size, &err);
    cv_assert_that (!(model || (expected && !strstr (err.message, expected))), "intent_model_file: %s: %s", what,
                    model ? "accepted" : err.message);
}

/* Rewrites the checksum of a model in data (size bytes) after an edit. */
static void
s_reseal (uint8_t *data, size_t size)
{
    intent_model_format_put_u32 (data + size - INTENT_MODEL_FORMAT_CRC_SIZE,
                                 intent_model_format_crc (0, data, size - INTENT_MODEL_FORMAT_CRC_SIZE));
}

/* Asserts that two models predict the same, bit for bit. */
static void
s_expect_same (const intent_model_t *one, const intent_model_t *other)
{
    static const char *const texts[] = {"alpha", "beta", "alpha beta gamma", "", "nothing here", "\xff\xfe \xc3"};
    intent_scratch_t *one_scratch = intent_scratch_new (one), *other_scratch = intent_scratch_new (other);
    assert (one_scratch && other_scratch);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        intent_prediction_t before, after;
        intent_model_predict (one, one_scratch, texts[i], strlen (texts[i]), 3, &before);
        intent_model_predict (other, other_scratch, texts[i], strlen (texts[i]), 3, &after);
        assert (before.count == after.count && before.margin == after.margin && before.confidence == after.confidence);
        for (size_t j = 0; j < before.count; j++)
            assert (before.top[j].label == after.top[j].label && before.top[j].score == after.top[j].score
                    && strcmp (before.top[j].name, after.top[j].name) == 0);
    }
    intent_scratch_destroy (&one_scratch);
    intent_scratch_destroy (&other_scratch);
}

/* A row for every one of 2^17 buckets: more rows than 16 bits count, so the model's map takes
   32; written and read back the same, and the model read back predicts through that map. */
static void
s_test_many_rows (void)
{
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 17;
    settings.word_max = 1;
    settings.char_min = settings.char_max = 0;
    static const char *const labels[] = {"first", "second"};
    cv_error_t err;
    intent_model_t *model = intent_model_new (&settings, labels, 2, &err);
    assert (model);
    size_t rows = (size_t) 1 << settings.bits;
    uint32_t *buckets = cv_malloc (rows * sizeof *buckets);
    float *idf = cv_malloc (rows * sizeof *idf), *weights = cv_calloc (2 * rows, sizeof *weights), bias[2] = {0, 0};
    for (size_t row = 0; row < rows; row++) {
        buckets[row] = (uint32_t) row;
        idf[row] = 1.0f;
    }
    uint32_t mask = (uint32_t) rows - 1;
    weights[2 * (intent_features_hash (INTENT_FEATURE_WORD, "alpha", 5) & mask)] = 1.0f;
    weights[2 * (intent_features_hash (INTENT_FEATURE_WORD, "beta", 4) & mask) + 1] = 1.0f;
    assert (intent_model_set_weights (model, rows, buckets, idf, weights, bias, 1.0f, &err) == 0);
    size_t size;
    uint8_t *data = intent_model_file_encode (model, &size);
    assert (data && size == intent_model_file_size (model));
    intent_model_t *loaded = intent_model_file_decode (data, size, &err);
    assert (loaded && intent_model_rows (loaded) == rows);
    s_expect_same (model, loaded);
    intent_scratch_t *scratch = intent_scratch_new (loaded);
    intent_prediction_t prediction;
    intent_model_predict (loaded, scratch, "alpha", 5, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "first") == 0 && fabsf (prediction.margin - 1.0f) < 1e-6f);
    intent_model_predict (loaded, scratch, "beta", 4, 1, &prediction);
    assert (strcmp (prediction.top[0].name, "second") == 0 && fabsf (prediction.margin - 1.0f) < 1e-6f);
    intent_scratch_destroy (&scratch);
    size_t again_size;
    uint8_t *again = intent_model_file_encode (loaded, &again_size);
    assert (again && again_size == size && memcmp (again, data, size) == 0);
    free (again);
    free (data);
    intent_model_destroy (&loaded);
    intent_model_destroy (&model);
    free (buckets);
    free (idf);
    free (weights);
}

/* The demo model the build trained: it loads, and writing it again gives the file's bytes. */
static void
s_test_demo (bool verbose)
{
#ifdef CONVEYOR_DEMO_MODEL
    cv_error_t err;
    intent_model_t *model = intent_model_file_load (CONVEYOR_DEMO_MODEL, &err);
    cv_assert_that (model, "intent_model_file: %s", err.message);
    FILE *file = fopen (CONVEYOR_DEMO_MODEL, "rb");
    assert (file);
    size_t file_size = intent_model_file_size (model);
    uint8_t *bytes = cv_malloc (file_size + 1);
    assert (fread (bytes, 1, file_size + 1, file) == file_size);
    fclose (file);
    size_t size;
    uint8_t *data = intent_model_file_encode (model, &size);
    assert (data && size == file_size && memcmp (data, bytes, size) == 0);
    if (verbose)
        printf ("  %s: %zu bytes, %zu labels, %zu rows, written again the same\n", CONVEYOR_DEMO_MODEL, size,
                intent_model_label_count (model), intent_model_rows (model));
    free (data);
    free (bytes);
    intent_model_destroy (&model);
#else
    (void) verbose;
#endif
}

void
intent_model_file_test (bool verbose)
{
    cv_error_t err;
    intent_model_t *model = s_test_model ();
    size_t size;
    uint8_t *data = intent_model_file_encode (model, &size);
    assert (data && size == intent_model_file_size (model));
    /* the format itself: these bytes are what every earlier build wrote for this model */
    if (verbose)
        printf ("  test model: %zu bytes, checksum 0x%08x\n", size,
                intent_model_format_get_u32 (data + size - INTENT_MODEL_FORMAT_CRC_SIZE));
    assert (size == GOLDEN_SIZE
            && intent_model_format_get_u32 (data + size - INTENT_MODEL_FORMAT_CRC_SIZE) == GOLDEN_CRC);
    assert (memcmp (data, INTENT_MODEL_MAGIC, INTENT_MODEL_FORMAT_MAGIC_SIZE) == 0
            && intent_model_format_get_u32 (data + INTENT_MODEL_FORMAT_MAGIC_SIZE) == 1);
    /* every weight as given, -0 too, +0 where a row of pairs keeps none */
    const uint8_t *written = data + size - INTENT_MODEL_FORMAT_CRC_SIZE - 4 * 3 * LABELS;
    for (size_t row = 0; row < 3; row++) {
        float weights[LABELS];
        intent_model_row (model, row, NULL, weights);
        for (size_t label = 0; label < LABELS; label++) {
            uint32_t bits;
            memcpy (&bits, &weights[label], sizeof bits);
            assert (intent_model_format_get_u32 (written + 4 * (row * LABELS + label)) == bits);
        }
    }

    /* decoded: the same predictions, bit for bit, and the same bytes */
    intent_model_t *loaded = intent_model_file_decode (data, size, &err);
    assert (loaded);
    s_expect_same (model, loaded);
    size_t loaded_size;
    uint8_t *again = intent_model_file_encode (loaded, &loaded_size);
    assert (again && loaded_size == size && memcmp (again, data, size) == 0);
    free (again);
    intent_model_destroy (&loaded);

    /* saved and loaded; over an existing file; not where the folder is missing */
    char directory[] = "/tmp/intent_model_file_test.XXXXXX";
    assert (mkdtemp (directory));
    char path[128], missing[128];
    snprintf (path, sizeof path, "%s/test.model", directory);
    snprintf (missing, sizeof missing, "%s/none/test.model", directory);
    assert (intent_model_file_save (model, path, &err) == 0);
    assert (intent_model_file_save (model, path, &err) == 0);
    assert (intent_model_file_save (model, missing, &err) == -1);
    assert (strstr (err.message, "none/test.model: cannot create"));
    loaded = intent_model_file_load (path, &err);
    assert (loaded && intent_model_rows (loaded) == 3);
    s_expect_same (model, loaded);
    again = intent_model_file_encode (loaded, &loaded_size);
    assert (again && loaded_size == size && memcmp (again, data, size) == 0);
    free (again);
    intent_model_destroy (&loaded);

    /* a file that is not there, a directory */
    assert (!intent_model_file_load (missing, &err) && strstr (err.message, "No such file"));
    assert (!intent_model_file_load (directory, &err) && strstr (err.message, "not a regular file"));

    /* truncated anywhere; truncated on disk; a byte flipped on disk */
    for (size_t cut = 0; cut < size; cut++)
        s_expect_refused (data, cut, cut < INTENT_MODEL_FORMAT_MAGIC_SIZE ? "not an intent model" : "truncated",
                          "truncated");
    FILE *file = fopen (path, "wb");
    assert (file && fwrite (data, 1, size / 2, file) == size / 2);
    fclose (file);
    assert (!intent_model_file_load (path, &err) && strstr (err.message, "truncated") && strstr (err.message, path));
    if (verbose)
        printf ("  %s\n", err.message);
    uint8_t *copy = cv_malloc (size + 1);
    memcpy (copy, data, size);
    copy[size / 2] ^= 0x10;
    file = fopen (path, "wb");
    assert (file && fwrite (copy, 1, size, file) == size);
    fclose (file);
    assert (!intent_model_file_load (path, &err) && strstr (err.message, "corrupted") && strstr (err.message, path));

    /* a byte flipped anywhere, or a bit */
    for (size_t at = 0; at < size; at++)
        for (int mask = 0; mask < 3; mask++) {
            memcpy (copy, data, size);
            copy[at] ^= mask == 0 ? 0xFF : mask == 1 ? 0x01 : 0x80;
            s_expect_refused (copy, size, NULL, "flipped");
        }
    memcpy (copy, data, size);
    copy[size / 2] ^= 0x10;
    s_expect_refused (copy, size, "corrupted", "flipped in the middle");
    /* a byte more */
    memcpy (copy, data, size);
    copy[size] = 0;
    s_expect_refused (copy, size + 1, "trailing", "one byte more");

    /* wrong magic, wrong version (with a good checksum) */
    memcpy (copy, data, size);
    memcpy (copy, "CVINTENX", INTENT_MODEL_FORMAT_MAGIC_SIZE);
    s_expect_refused (copy, size, "not an intent model", "magic");
    memcpy (copy, data, size);
    intent_model_format_put_u32 (copy + INTENT_MODEL_FORMAT_MAGIC_SIZE, INTENT_MODEL_VERSION + 1);
    s_reseal (copy, size);
    s_expect_refused (copy, size, "version 2, this build reads version 1", "version");

    /* files of other formats */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    s_expect_refused (png, sizeof png, "not an intent model", "png");
    const char *csv = "text,category\nI lost my card,lost_or_stolen_card\n";
    s_expect_refused ((const uint8_t *) csv, strlen (csv), "not an intent model", "csv");
    s_expect_refused ((const uint8_t *) "", 0, "not an intent model", "empty");

    /* well sealed but made wrong: bad settings, counts, labels, numbers */
    memcpy (copy, data, size);
    copy[INTENT_MODEL_FORMAT_MAGIC_SIZE + 16] = 30; /* bucket bits */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "feature settings", "bits");
    memcpy (copy, data, size);
    intent_model_format_put_u32 (copy + INTENT_MODEL_FORMAT_MAGIC_SIZE + 20, 0xFFFFFFFFu); /* labels */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "bad counts", "labels");
    memcpy (copy, data, size);
    intent_model_format_put_u32 (copy + INTENT_MODEL_FORMAT_MAGIC_SIZE + 24, 4); /* one row more than there is */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "counts make", "rows");
    memcpy (copy, data, size);
    copy[INTENT_MODEL_FORMAT_HEADER_SIZE + 1] = 'L'; /* "Label0" is fine; a space is not, nor a NUL */
    copy[INTENT_MODEL_FORMAT_HEADER_SIZE + 2] = ' ';
    s_reseal (copy, size);
    s_expect_refused (copy, size, "not a valid intent name", "label");
    memcpy (copy, data, size);
    copy[INTENT_MODEL_FORMAT_HEADER_SIZE + 2] = '\0';
    s_reseal (copy, size);
    s_expect_refused (copy, size, "not a valid intent name", "label with a NUL");
    memcpy (copy, data, size);
    intent_model_format_put_f32 (copy + size - INTENT_MODEL_FORMAT_CRC_SIZE - 4, NAN); /* the last weight */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "finite", "nan");
    memcpy (copy, data, size);
    intent_model_format_put_f32 (copy + INTENT_MODEL_FORMAT_HEADER_SIZE - 8, 1.5f); /* coverage */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "coverage", "coverage");
    memcpy (copy, data, size);
    size_t buckets_at = size - INTENT_MODEL_FORMAT_CRC_SIZE - 4 * 3 * LABELS - 8 * 3;
    intent_model_format_put_u32 (copy + buckets_at + 4,
                                 intent_model_format_get_u32 (copy + buckets_at)); /* two rows of one bucket */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "out of order", "buckets");
    free (copy);
    free (data);

    s_test_many_rows ();
    s_test_demo (verbose);

    unlink (path);
    assert (rmdir (directory) == 0); /* the saves left no temporary files */
    intent_model_destroy (&model);
    if (verbose)
        printf ("intent_model_file: ok\n");
}
