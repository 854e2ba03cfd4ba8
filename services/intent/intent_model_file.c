/* The intent model's file: the model written to and read from its versioned, checksummed format. */
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

#include <zlib.h>

#include "cv_alloc.h"

#define MAGIC_SIZE 8
/* magic, version, file size, flags, 4 setting bytes, labels, rows, knots, default idf, coverage,
   threshold */
#define HEADER_SIZE (MAGIC_SIZE + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 4)
#define CRC_SIZE 4
/* The most bytes read from a model in one piece: a row of weights, the biases, a label. */
#define PIECE_MAX (4 * INTENT_MODEL_MAX_LABELS)
/* The size and checksum of the self-test's model file, as this format has always written it. */
#define GOLDEN_SIZE 311
#define GOLDEN_CRC 0x185885c6u

/* CRC-32/ISO-HDLC, as the file's last four bytes hold it: zlib's crc32 of size bytes at data,
   continuing from crc (0 to start). */
static uint32_t
s_crc_add (uint32_t crc, const uint8_t *data, size_t size)
{
    return (uint32_t) crc32_z (crc, data, size);
}

static uint32_t
s_crc32 (const uint8_t *data, size_t size)
{
    return s_crc_add (0, data, size);
}

static bool
s_finite (const float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!isfinite (values[i]))
            return false;
    return true;
}

static uint8_t *
s_put_u32 (uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t) value;
    p[1] = (uint8_t) (value >> 8);
    p[2] = (uint8_t) (value >> 16);
    p[3] = (uint8_t) (value >> 24);
    return p + 4;
}

static uint8_t *
s_put_f32 (uint8_t *p, float value)
{
    uint32_t bits;
    memcpy (&bits, &value, sizeof bits);
    return s_put_u32 (p, bits);
}

static uint8_t *
s_put_f32s (uint8_t *p, const float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        p = s_put_f32 (p, values[i]);
    return p;
}

static uint32_t
s_get_u32 (const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static float
s_get_f32 (const uint8_t *p)
{
    uint32_t bits = s_get_u32 (p);
    float value;
    memcpy (&value, &bits, sizeof value);
    return value;
}

static void
s_get_f32s (const uint8_t *p, float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        values[i] = s_get_f32 (p + 4 * i);
}

/* The file size for a model of these counts; labels_bytes is the sum of the labels' lengths.
   Computed in 64 bits from 32-bit counts, so it cannot overflow. */
static uint64_t
s_file_size (uint64_t labels, uint64_t labels_bytes, uint64_t rows, uint64_t knots)
{
    return HEADER_SIZE + labels + labels_bytes + 4 * labels + 8 * knots + 8 * rows + 4 * rows * labels + CRC_SIZE;
}

size_t
intent_model_file_size (const intent_model_t *model)
{
    assert (model);
    size_t labels = intent_model_label_count (model), labels_bytes = 0;
    for (size_t i = 0; i < labels; i++)
        labels_bytes += strlen (intent_model_label (model, i));
    const float *margins, *probabilities;
    size_t knots = intent_model_knots (model, &margins, &probabilities);
    return (size_t) s_file_size (labels, labels_bytes, intent_model_rows (model), knots);
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
    memcpy (p, INTENT_MODEL_MAGIC, MAGIC_SIZE);
    p += MAGIC_SIZE;
    p = s_put_u32 (p, INTENT_MODEL_VERSION);
    p = s_put_u32 (p, (uint32_t) total);
    p = s_put_u32 (p, (uint32_t) (total >> 32));
    p = s_put_u32 (p, features->text_flags);
    *p++ = (uint8_t) features->bits;
    *p++ = (uint8_t) features->word_max;
    *p++ = (uint8_t) features->char_min;
    *p++ = (uint8_t) features->char_max;
    p = s_put_u32 (p, (uint32_t) labels);
    p = s_put_u32 (p, (uint32_t) rows);
    p = s_put_u32 (p, (uint32_t) knots);
    p = s_put_f32 (p, intent_model_default_idf (model));
    p = s_put_f32 (p, intent_model_coverage (model));
    p = s_put_f32 (p, intent_model_threshold (model));
    assert (p == data + HEADER_SIZE);
    for (size_t i = 0; i < labels; i++) {
        const char *label = intent_model_label (model, i);
        size_t length = strlen (label);
        *p++ = (uint8_t) length;
        memcpy (p, label, length);
        p += length;
    }
    p = s_put_f32s (p, intent_model_bias (model), labels);
    p = s_put_f32s (p, margins, knots);
    p = s_put_f32s (p, probabilities, knots);
    for (size_t row = 0; row < rows; row++)
        p = s_put_u32 (p, intent_model_row (model, row, NULL, NULL));
    for (size_t row = 0; row < rows; row++) {
        float idf;
        intent_model_row (model, row, &idf, NULL);
        p = s_put_f32 (p, idf);
    }
    float weights[INTENT_MODEL_MAX_LABELS];
    for (size_t row = 0; row < rows; row++) {
        intent_model_row (model, row, NULL, weights);
        p = s_put_f32s (p, weights, labels);
    }
    p = s_put_u32 (p, s_crc32 (data, total - CRC_SIZE));
    assert (p == data + total);
    *size = total;
    return data;
}

/* A model's bytes, read in order, a piece at a time, from memory or from a file: a model on
   disk is never held whole in memory beside the model made from it. */
typedef struct {
    const uint8_t *data; /* the bytes, or NULL to read file */
    FILE *file;
    size_t size;              /* of the whole model */
    size_t offset;            /* of the next byte */
    uint32_t crc;             /* of the bytes read since the last restart */
    uint8_t piece[PIECE_MAX]; /* what s_read read last from file */
} reader_t;

/* The next size bytes (at most PIECE_MAX, borrowed until the next read), or NULL when they run
   past the model's size or the file cannot be read. */
static const uint8_t *
s_read (reader_t *reader, size_t size)
{
    assert (size <= PIECE_MAX);
    if (size > reader->size - reader->offset)
        return NULL;
    const uint8_t *piece = reader->piece;
    if (reader->data)
        piece = reader->data + reader->offset;
    else if (fread (reader->piece, 1, size, reader->file) != size)
        return NULL;
    reader->offset += size;
    reader->crc = s_crc_add (reader->crc, piece, size);
    return piece;
}

/* Goes to offset; the checksum counts from there when restart, else it is left as it was. */
static int
s_seek (reader_t *reader, size_t offset, bool restart)
{
    assert (offset <= reader->size);
    if (!reader->data && fseek (reader->file, (long) offset, SEEK_SET))
        return -1;
    reader->offset = offset;
    if (restart)
        reader->crc = 0;
    return 0;
}

static int
s_read_failed (const reader_t *reader, cv_error_t *err)
{
    if (reader->file && ferror (reader->file))
        return cv_error_set (err, CV_ERR_INVALID, NULL, "cannot read it: %s", strerror (errno));
    return cv_error_set (err, CV_ERR_INVALID, NULL, "it changed while read");
}

/* Reads count little-endian floats into values. */
static int
s_read_f32s (reader_t *reader, float *values, size_t count)
{
    while (count > 0) {
        size_t some = count < PIECE_MAX / 4 ? count : PIECE_MAX / 4;
        const uint8_t *piece = s_read (reader, 4 * some);
        if (!piece)
            return -1;
        s_get_f32s (piece, values, some);
        values += some;
        count -= some;
    }
    return 0;
}

static int
s_read_u32s (reader_t *reader, uint32_t *values, size_t count)
{
    while (count > 0) {
        size_t some = count < PIECE_MAX / 4 ? count : PIECE_MAX / 4;
        const uint8_t *piece = s_read (reader, 4 * some);
        if (!piece)
            return -1;
        for (size_t i = 0; i < some; i++)
            values[i] = s_get_u32 (piece + 4 * i);
        values += some;
        count -= some;
    }
    return 0;
}

/* The first pass: what the frame says, before anything else is read — the magic, the version,
   the size and the checksum of every byte. */
static int
s_check_frame (reader_t *reader, cv_error_t *err)
{
    size_t size = reader->size;
    const uint8_t *header = s_read (reader, size < HEADER_SIZE ? size : HEADER_SIZE);
    if (!header)
        return s_read_failed (reader, err);
    if (size < MAGIC_SIZE || memcmp (header, INTENT_MODEL_MAGIC, MAGIC_SIZE) != 0)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "not an intent model (it does not start with %s)",
                             INTENT_MODEL_MAGIC);
    if (size < HEADER_SIZE + CRC_SIZE)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "truncated: %zu bytes, fewer than a model's header", size);
    uint32_t version = s_get_u32 (header + MAGIC_SIZE);
    if (version != INTENT_MODEL_VERSION)
        return cv_error_set (err, CV_ERR_INVALID, NULL,
                             "model format version %u, this build reads version %d: train it again with this conveyor",
                             version, INTENT_MODEL_VERSION);
    uint64_t declared =
        (uint64_t) s_get_u32 (header + MAGIC_SIZE + 4) | (uint64_t) s_get_u32 (header + MAGIC_SIZE + 8) << 32;
    if (declared != size)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %zu bytes where its header says %llu",
                             size < declared ? "truncated" : "trailing bytes", size, (unsigned long long) declared);
    while (reader->offset < size - CRC_SIZE) {
        size_t left = size - CRC_SIZE - reader->offset;
        if (!s_read (reader, left < PIECE_MAX ? left : PIECE_MAX))
            return s_read_failed (reader, err);
    }
    uint32_t computed = reader->crc;
    const uint8_t *stored = s_read (reader, CRC_SIZE);
    if (!stored)
        return s_read_failed (reader, err);
    if (s_get_u32 (stored) != computed)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "corrupted: checksum 0x%08x where the file says 0x%08x",
                             computed, s_get_u32 (stored));
    return 0;
}

/* Measures the room that rows rows of labels weights each take, from where reader is; then
   goes back, the checksum as it was. */
static int
s_measure_rows (reader_t *reader, size_t rows, size_t labels, intent_weights_room_t *room)
{
    size_t back = reader->offset;
    uint32_t crc = reader->crc;
    float row[INTENT_MODEL_MAX_LABELS];
    for (size_t r = 0; r < rows; r++) {
        if (s_read_f32s (reader, row, labels))
            return -1;
        intent_weights_measure (room, row, labels);
    }
    if (s_seek (reader, back, false))
        return -1;
    reader->crc = crc;
    return 0;
}

/* The second pass: every count, name and number, into the model, whose weights are written
   straight into their rows. The frame was checked by s_check_frame. */
static intent_model_t *
s_decode (reader_t *reader, cv_error_t *err)
{
    size_t size = reader->size;
    if (s_seek (reader, 0, true)) {
        s_read_failed (reader, err);
        return NULL;
    }
    uint8_t header[HEADER_SIZE];
    const uint8_t *piece = s_read (reader, HEADER_SIZE);
    if (!piece) {
        s_read_failed (reader, err);
        return NULL;
    }
    memcpy (header, piece, HEADER_SIZE);
    /* The checksum only says that the bytes are those written: a file made otherwise must still
       fail cleanly, so every count is checked before it is used. */
    const uint8_t *p = header + MAGIC_SIZE + 12;
    intent_features_settings_t features = {
        .text_flags = s_get_u32 (p), .bits = p[4], .word_max = p[5], .char_min = p[6], .char_max = p[7]};
    if (intent_features_settings_check (&features, err)) {
        cv_error_prefix (err, "feature settings");
        return NULL;
    }
    uint32_t labels = s_get_u32 (p + 8), rows = s_get_u32 (p + 12), knots = s_get_u32 (p + 16);
    if (labels < 2 || labels > INTENT_MODEL_MAX_LABELS || rows > (1u << features.bits) || knots < 1
        || knots > INTENT_MODEL_MAX_KNOTS) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "bad counts: %u labels, %u rows, %u knots", labels, rows, knots);
        return NULL;
    }
    float default_idf = s_get_f32 (header + HEADER_SIZE - 12);
    float coverage = s_get_f32 (header + HEADER_SIZE - 8);
    float threshold = s_get_f32 (header + HEADER_SIZE - 4);

    /* the labels, as far as the bytes go; then the size their lengths make */
    char *text = cv_malloc ((size_t) labels * 256);
    const char *names[INTENT_MODEL_MAX_LABELS];
    size_t sizes[INTENT_MODEL_MAX_LABELS];
    uint64_t labels_bytes = 0;
    for (uint32_t i = 0; i < labels; i++) {
        const uint8_t *length = reader->offset < size - CRC_SIZE ? s_read (reader, 1) : NULL;
        sizes[i] = length ? *length : 0;
        const uint8_t *name = length && sizes[i] <= size - CRC_SIZE - reader->offset ? s_read (reader, sizes[i]) : NULL;
        if (!name) {
            free (text);
            cv_error_set (err, CV_ERR_INVALID, NULL, "the labels run past the end of the file");
            return NULL;
        }
        memcpy (text + 256 * (size_t) i, name, sizes[i]);
        names[i] = text + 256 * (size_t) i;
        labels_bytes += sizes[i];
    }
    uint64_t expected = s_file_size (labels, labels_bytes, rows, knots);
    if (expected != size) {
        free (text);
        cv_error_set (err, CV_ERR_INVALID, NULL, "%zu bytes where its counts make %llu", size,
                      (unsigned long long) expected);
        return NULL;
    }
    /* intent_model_new takes names that end in a NUL: one inside a name would cut it short */
    for (uint32_t i = 0; i < labels; i++) {
        if (!intent_model_label_valid (names[i], sizes[i])) {
            cv_error_set (err, CV_ERR_INVALID, "labels",
                          "label '%.*s' is not a valid intent name (1..%d of "
                          "A-Z a-z 0-9 _ . : -)",
                          (int) sizes[i], names[i], CV_NAME_MAX_BYTES);
            free (text);
            return NULL;
        }
        text[256 * (size_t) i + sizes[i]] = '\0';
    }
    intent_model_t *self = intent_model_new (&features, names, labels, err);
    free (text);
    if (!self)
        return NULL;

    float *margins = cv_malloc (knots * sizeof *margins);
    float *probabilities = cv_malloc (knots * sizeof *probabilities);
    uint32_t *buckets = cv_malloc ((rows ? rows : 1) * sizeof *buckets);
    float *idf = cv_malloc ((rows ? rows : 1) * sizeof *idf);
    float bias[INTENT_MODEL_MAX_LABELS], row[INTENT_MODEL_MAX_LABELS];
    intent_weights_t *weights = NULL;
    intent_weights_room_t room = {0};
    int rc = -1;
    if (s_read_f32s (reader, bias, labels) || s_read_f32s (reader, margins, knots)
        || s_read_f32s (reader, probabilities, knots))
        s_read_failed (reader, err);
    else if (!s_finite (bias, labels))
        cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
    else if (s_read_u32s (reader, buckets, rows) || s_read_f32s (reader, idf, rows)
             || s_measure_rows (reader, rows, labels, &room))
        s_read_failed (reader, err);
    else if ((weights = intent_weights_new (features.bits, labels, rows, buckets, idf, default_idf, &room, err))) {
        rc = 0;
        for (size_t r = 0; rc == 0 && r < rows; r++) {
            if (s_read_f32s (reader, row, labels))
                rc = s_read_failed (reader, err);
            else if (!s_finite (row, labels))
                rc = cv_error_set (err, CV_ERR_INVALID, "weights", "a weight, bias or idf is not a finite number");
            else if (intent_weights_add (weights, row, err))
                rc = s_read_failed (reader, err); /* more weights than counted: the file changed */
        }
        /* the second pass must have read the bytes that the first checked */
        uint32_t computed = reader->crc;
        const uint8_t *stored = rc == 0 ? s_read (reader, CRC_SIZE) : NULL;
        if (rc == 0 && (!stored || s_get_u32 (stored) != computed))
            rc = s_read_failed (reader, err);
        if (rc == 0)
            rc = intent_model_take_weights (self, &weights, bias, err);
    }
    if (rc == 0)
        rc = intent_model_set_calibration (self, knots, margins, probabilities, err);
    if (rc == 0)
        rc = intent_model_set_threshold (self, coverage, threshold, err);
    intent_weights_destroy (&weights);
    free (margins);
    free (probabilities);
    free (buckets);
    free (idf);
    if (rc)
        intent_model_destroy (&self);
    return self;
}

intent_model_t *
intent_model_file_decode (const void *bytes, size_t size, cv_error_t *err)
{
    assert (bytes || size == 0);
    static const uint8_t none[1];
    reader_t *reader = cv_calloc (1, sizeof *reader);
    reader->data = bytes ? bytes : none;
    reader->size = size;
    intent_model_t *self = s_check_frame (reader, err) == 0 ? s_decode (reader, err) : NULL;
    free (reader);
    return self;
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
    reader_t *reader = NULL;
    struct stat status;
    if (fstat (fileno (file), &status) || !S_ISREG (status.st_mode))
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: not a regular file", path);
    else if ((uint64_t) status.st_size > INTENT_MODEL_MAX_BYTES)
        cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %lld bytes, more than a model may have", path,
                      (long long) status.st_size);
    else {
        reader = cv_calloc (1, sizeof *reader);
        reader->file = file;
        reader->size = (size_t) status.st_size;
        if (s_check_frame (reader, err) == 0)
            self = s_decode (reader, err);
        if (!self)
            cv_error_prefix (err, "%s", path);
    }
    free (reader);
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
#define LABELS 9

/* A model of nine labels whose rows the model keeps both ways: "alpha" as pairs (one weight and a
   -0), "beta" whole, "gamma" with no weight at all; a confidence map and a threshold. */
static intent_model_t *
s_test_model (void)
{
    intent_features_settings_t settings;
    intent_features_settings_default (&settings);
    settings.bits = 12;
    settings.word_max = 1;
    settings.char_min = settings.char_max = 0;
    cv_error_t err;
    intent_model_t *model = intent_model_new (&settings, s_labels, LABELS, &err);
    assert (model);
    const char *words[] = {"alpha", "beta", "gamma"};
    uint32_t mask = (1u << settings.bits) - 1, buckets[3];
    for (size_t i = 0; i < 3; i++)
        buckets[i] = intent_features_hash (INTENT_FEATURE_WORD, words[i], strlen (words[i])) & mask;
    float weights[3][LABELS] = {{0}};
    weights[0][3] = 2.0f;
    weights[0][5] = -0.0f;
    for (size_t label = 0; label < LABELS; label++)
        weights[1][label] = label == 7 ? 1.0f : -0.25f;
    /* the rows in bucket order, as a model takes them */
    size_t order[3] = {0, 1, 2};
    for (size_t i = 1; i < 3; i++)
        for (size_t j = i; j > 0 && buckets[order[j - 1]] > buckets[order[j]]; j--) {
            size_t swap = order[j];
            order[j] = order[j - 1];
            order[j - 1] = swap;
        }
    uint32_t sorted[3];
    float rows[3 * LABELS], idf[3] = {1.5f, 1.25f, 2.0f}, bias[LABELS] = {0.01f, -0.02f};
    for (size_t i = 0; i < 3; i++) {
        sorted[i] = buckets[order[i]];
        memcpy (rows + LABELS * i, weights[order[i]], sizeof weights[0]);
    }
    assert (intent_model_set_weights (model, 3, sorted, idf, rows, bias, 3.0f, &err) == 0);
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
    s_put_u32 (data + size - CRC_SIZE, s_crc32 (data, size - CRC_SIZE));
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
        printf ("  test model: %zu bytes, checksum 0x%08x\n", size, s_get_u32 (data + size - CRC_SIZE));
    assert (size == GOLDEN_SIZE && s_get_u32 (data + size - CRC_SIZE) == GOLDEN_CRC);
    assert (memcmp (data, INTENT_MODEL_MAGIC, MAGIC_SIZE) == 0 && s_get_u32 (data + MAGIC_SIZE) == 1);
    /* every weight as given, -0 too, +0 where a row of pairs keeps none */
    const uint8_t *written = data + size - CRC_SIZE - 4 * 3 * LABELS;
    for (size_t row = 0; row < 3; row++) {
        float weights[LABELS];
        intent_model_row (model, row, NULL, weights);
        for (size_t label = 0; label < LABELS; label++) {
            uint32_t bits;
            memcpy (&bits, &weights[label], sizeof bits);
            assert (s_get_u32 (written + 4 * (row * LABELS + label)) == bits);
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
        s_expect_refused (data, cut, cut < MAGIC_SIZE ? "not an intent model" : "truncated", "truncated");
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
    memcpy (copy, "CVINTENX", MAGIC_SIZE);
    s_expect_refused (copy, size, "not an intent model", "magic");
    memcpy (copy, data, size);
    s_put_u32 (copy + MAGIC_SIZE, INTENT_MODEL_VERSION + 1);
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
    copy[MAGIC_SIZE + 16] = 30; /* bucket bits */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "feature settings", "bits");
    memcpy (copy, data, size);
    s_put_u32 (copy + MAGIC_SIZE + 20, 0xFFFFFFFFu); /* labels */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "bad counts", "labels");
    memcpy (copy, data, size);
    s_put_u32 (copy + MAGIC_SIZE + 24, 4); /* one row more than there is */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "counts make", "rows");
    memcpy (copy, data, size);
    copy[HEADER_SIZE + 1] = 'L'; /* "Label0" is fine; a space is not, nor a NUL */
    copy[HEADER_SIZE + 2] = ' ';
    s_reseal (copy, size);
    s_expect_refused (copy, size, "not a valid intent name", "label");
    memcpy (copy, data, size);
    copy[HEADER_SIZE + 2] = '\0';
    s_reseal (copy, size);
    s_expect_refused (copy, size, "not a valid intent name", "label with a NUL");
    memcpy (copy, data, size);
    s_put_f32 (copy + size - CRC_SIZE - 4, NAN); /* the last weight */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "finite", "nan");
    memcpy (copy, data, size);
    s_put_f32 (copy + HEADER_SIZE - 8, 1.5f); /* coverage */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "coverage", "coverage");
    memcpy (copy, data, size);
    size_t buckets_at = size - CRC_SIZE - 4 * 3 * LABELS - 8 * 3;
    s_put_u32 (copy + buckets_at + 4, s_get_u32 (copy + buckets_at)); /* two rows of one bucket */
    s_reseal (copy, size);
    s_expect_refused (copy, size, "out of order", "buckets");
    free (copy);
    free (data);

    s_test_many_rows ();
    s_test_demo (verbose);

    /* the checksum is CRC-32/ISO-HDLC: its check value */
    assert (s_crc32 ((const uint8_t *) "123456789", 9) == 0xCBF43926u);
    assert (s_crc_add (s_crc32 ((const uint8_t *) "1234", 4), (const uint8_t *) "56789", 5) == 0xCBF43926u);

    unlink (path);
    assert (rmdir (directory) == 0); /* the saves left no temporary files */
    intent_model_destroy (&model);
    if (verbose)
        printf ("intent_model_file: ok\n");
}
