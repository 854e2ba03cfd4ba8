/* The intent model's file read and checked, in two passes, from memory or from a file. */
#include "intent_model_reader.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "intent_model_file.h"
#include "intent_model_format.h"
#include "intent_model_sample.h"

/* The most bytes read from a model in one piece: a row of weights, the biases, a label. */
#define PIECE_MAX (4 * INTENT_MODEL_MAX_LABELS)

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
    reader->crc = intent_model_format_crc (reader->crc, piece, size);
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

/* Reads count little-endian numbers: into words when not NULL, else into floats. */
static int
s_read_numbers (reader_t *reader, uint32_t *words, float *floats, size_t count)
{
    for (size_t done = 0; done < count;) {
        size_t some = count - done < PIECE_MAX / 4 ? count - done : PIECE_MAX / 4;
        const uint8_t *piece = s_read (reader, 4 * some);
        if (!piece)
            return -1;
        for (size_t i = 0; i < some; i++, done++)
            if (words)
                words[done] = intent_model_format_get_u32 (piece + 4 * i);
            else
                floats[done] = intent_model_format_get_f32 (piece + 4 * i);
    }
    return 0;
}

static int
s_read_f32s (reader_t *reader, float *values, size_t count)
{
    return s_read_numbers (reader, NULL, values, count);
}

static int
s_read_u32s (reader_t *reader, uint32_t *values, size_t count)
{
    return s_read_numbers (reader, values, NULL, count);
}

/* The first pass: what the frame says, before anything else is read — the magic, the version,
   the size and the checksum of every byte. */
static int
s_check_frame (reader_t *reader, cv_error_t *err)
{
    size_t size = reader->size;
    const uint8_t *header =
        s_read (reader, size < INTENT_MODEL_FORMAT_HEADER_SIZE ? size : INTENT_MODEL_FORMAT_HEADER_SIZE);
    if (!header)
        return s_read_failed (reader, err);
    if (size < INTENT_MODEL_FORMAT_MAGIC_SIZE
        || memcmp (header, INTENT_MODEL_MAGIC, INTENT_MODEL_FORMAT_MAGIC_SIZE) != 0)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "not an intent model (it does not start with %s)",
                             INTENT_MODEL_MAGIC);
    if (size < INTENT_MODEL_FORMAT_HEADER_SIZE + INTENT_MODEL_FORMAT_CRC_SIZE)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "truncated: %zu bytes, fewer than a model's header", size);
    uint32_t version = intent_model_format_get_u32 (header + INTENT_MODEL_FORMAT_MAGIC_SIZE);
    if (version != INTENT_MODEL_VERSION)
        return cv_error_set (err, CV_ERR_INVALID, NULL,
                             "model format version %u, this build reads version %d: train it again with this conveyor",
                             version, INTENT_MODEL_VERSION);
    uint64_t declared = (uint64_t) intent_model_format_get_u32 (header + INTENT_MODEL_FORMAT_MAGIC_SIZE + 4)
                        | (uint64_t) intent_model_format_get_u32 (header + INTENT_MODEL_FORMAT_MAGIC_SIZE + 8) << 32;
    if (declared != size)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "%s: %zu bytes where its header says %llu",
                             size < declared ? "truncated" : "trailing bytes", size, (unsigned long long) declared);
    while (reader->offset < size - INTENT_MODEL_FORMAT_CRC_SIZE) {
        size_t left = size - INTENT_MODEL_FORMAT_CRC_SIZE - reader->offset;
        if (!s_read (reader, left < PIECE_MAX ? left : PIECE_MAX))
            return s_read_failed (reader, err);
    }
    uint32_t computed = reader->crc;
    const uint8_t *stored = s_read (reader, INTENT_MODEL_FORMAT_CRC_SIZE);
    if (!stored)
        return s_read_failed (reader, err);
    if (intent_model_format_get_u32 (stored) != computed)
        return cv_error_set (err, CV_ERR_INVALID, NULL, "corrupted: checksum 0x%08x where the file says 0x%08x",
                             computed, intent_model_format_get_u32 (stored));
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
    uint8_t header[INTENT_MODEL_FORMAT_HEADER_SIZE];
    const uint8_t *piece = s_read (reader, INTENT_MODEL_FORMAT_HEADER_SIZE);
    if (!piece) {
        s_read_failed (reader, err);
        return NULL;
    }
    memcpy (header, piece, INTENT_MODEL_FORMAT_HEADER_SIZE);
    /* The checksum only says that the bytes are those written: a file made otherwise must still
       fail cleanly, so every count is checked before it is used. */
    const uint8_t *p = header + INTENT_MODEL_FORMAT_MAGIC_SIZE + 12;
    intent_features_settings_t features = {.text_flags = intent_model_format_get_u32 (p),
                                           .bits = p[4],
                                           .word_max = p[5],
                                           .char_min = p[6],
                                           .char_max = p[7]};
    if (intent_features_settings_check (&features, err)) {
        cv_error_prefix (err, "feature settings");
        return NULL;
    }
    uint32_t labels = intent_model_format_get_u32 (p + 8), rows = intent_model_format_get_u32 (p + 12),
             knots = intent_model_format_get_u32 (p + 16);
    if (labels < 2 || labels > INTENT_MODEL_MAX_LABELS || rows > (1u << features.bits) || knots < 1
        || knots > INTENT_MODEL_MAX_KNOTS) {
        cv_error_set (err, CV_ERR_INVALID, NULL, "bad counts: %u labels, %u rows, %u knots", labels, rows, knots);
        return NULL;
    }
    float default_idf = intent_model_format_get_f32 (header + INTENT_MODEL_FORMAT_HEADER_SIZE - 12);
    float coverage = intent_model_format_get_f32 (header + INTENT_MODEL_FORMAT_HEADER_SIZE - 8);
    float threshold = intent_model_format_get_f32 (header + INTENT_MODEL_FORMAT_HEADER_SIZE - 4);

    /* the labels, as far as the bytes go; then the size their lengths make */
    char *text = cv_malloc ((size_t) labels * 256);
    const char *names[INTENT_MODEL_MAX_LABELS];
    size_t sizes[INTENT_MODEL_MAX_LABELS];
    uint64_t labels_bytes = 0;
    for (uint32_t i = 0; i < labels; i++) {
        const uint8_t *length = reader->offset < size - INTENT_MODEL_FORMAT_CRC_SIZE ? s_read (reader, 1) : NULL;
        sizes[i] = length ? *length : 0;
        const uint8_t *name = length && sizes[i] <= size - INTENT_MODEL_FORMAT_CRC_SIZE - reader->offset
                                  ? s_read (reader, sizes[i])
                                  : NULL;
        if (!name) {
            free (text);
            cv_error_set (err, CV_ERR_INVALID, NULL, "the labels run past the end of the file");
            return NULL;
        }
        memcpy (text + 256 * (size_t) i, name, sizes[i]);
        names[i] = text + 256 * (size_t) i;
        labels_bytes += sizes[i];
    }
    uint64_t expected = intent_model_format_size (labels, labels_bytes, rows, knots);
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
    else if (intent_weights_check_finite (bias, labels, err))
        rc = -1;
    else if (s_read_u32s (reader, buckets, rows) || s_read_f32s (reader, idf, rows)
             || s_measure_rows (reader, rows, labels, &room))
        s_read_failed (reader, err);
    else if ((weights = intent_weights_new (features.bits, labels, rows, buckets, idf, default_idf, &room, err))) {
        rc = 0;
        for (size_t r = 0; rc == 0 && r < rows; r++) {
            if (s_read_f32s (reader, row, labels))
                rc = s_read_failed (reader, err);
            else if (intent_weights_check_finite (row, labels, err))
                rc = -1;
            else if (intent_weights_add (weights, row, err))
                rc = s_read_failed (reader, err); /* more weights than counted: the file changed */
        }
        /* the second pass must have read the bytes that the first checked */
        uint32_t computed = reader->crc;
        const uint8_t *stored = rc == 0 ? s_read (reader, INTENT_MODEL_FORMAT_CRC_SIZE) : NULL;
        if (rc == 0 && (!stored || intent_model_format_get_u32 (stored) != computed))
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
intent_model_reader_read (const void *data, FILE *file, size_t size, cv_error_t *err)
{
    assert (data || file);
    reader_t *reader = cv_calloc (1, sizeof *reader);
    reader->data = data;
    reader->file = data ? NULL : file;
    reader->size = size;
    intent_model_t *self = s_check_frame (reader, err) == 0 ? s_decode (reader, err) : NULL;
    free (reader);
    return self;
}

/* --- self-test --- */

void
intent_model_reader_test (bool verbose)
{
    static const char *const labels[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"};
    const float idf[] = {1.0f, 2.0f, 3.0f}, bias[INTENT_MODEL_SAMPLE_LABELS] = {0.25f, -0.5f};
    intent_model_t *model = intent_model_sample_new (labels, idf, bias, 4.0f, NULL, NULL);
    cv_error_t err;
    assert (intent_model_set_calibration (model, 2, (const float[]){0.0f, 1.0f}, (const float[]){0.3f, 0.9f}, &err)
            == 0);
    size_t size;
    uint8_t *data = intent_model_file_encode (model, &size);

    /* from memory and from a file, the same model: written again, the same bytes */
    FILE *file = tmpfile ();
    assert (file && fwrite (data, 1, size, file) == size && fseek (file, 0, SEEK_SET) == 0);
    intent_model_t *from_memory = intent_model_reader_read (data, NULL, size, &err);
    cv_assert_that (from_memory, "intent_model_reader: %s", err.message);
    intent_model_t *from_file = intent_model_reader_read (NULL, file, size, &err);
    cv_assert_that (from_file, "intent_model_reader: %s", err.message);
    assert (intent_model_rows (from_file) == 3 && intent_model_default_idf (from_file) == 4.0f);
    assert (strcmp (intent_model_label (from_file, 8), "r8") == 0 && intent_model_bias (from_file)[1] == -0.5f);
    const intent_model_t *read[] = {from_memory, from_file};
    for (size_t i = 0; i < 2; i++) {
        size_t again_size;
        uint8_t *again = intent_model_file_encode (read[i], &again_size);
        assert (again_size == size && memcmp (again, data, size) == 0);
        free (again);
    }
    intent_model_destroy (&from_memory);
    intent_model_destroy (&from_file);

    /* a file shorter than the size it was said to have: the bytes ran out while read */
    assert (fflush (file) == 0 && ftruncate (fileno (file), (off_t) (size / 2)) == 0);
    assert (fseek (file, 0, SEEK_SET) == 0);
    assert (!intent_model_reader_read (NULL, file, size, &err));
    cv_assert_that (strstr (err.message, "changed while read"), "intent_model_reader: %s", err.message);
    fclose (file);
    free (data);
    intent_model_destroy (&model);
    if (verbose)
        printf ("intent_model_reader: ok\n");
}
