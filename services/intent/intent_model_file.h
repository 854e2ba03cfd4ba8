/* The intent model's file: a versioned, checksummed binary format that intent_model_t is saved
   to and loaded from.

   The file, every number little-endian, floats IEEE 754 single precision:
       magic "CVINTENT", u32 format version, u64 file size,
       u32 normalisation flags, u8 bucket bits, u8 word n-grams, u8 char n-gram min, u8 max,
       u32 labels, u32 rows, u32 calibration knots, f32 idf of a bucket without a row,
       f32 coverage, f32 threshold,
       each label: u8 length, its bytes;   f32 bias per label;
       f32 knot margins, f32 knot probabilities;
       u32 bucket of each row (increasing), f32 idf of each row, f32 weights [row][label],
       u32 CRC-32 (ISO-HDLC, zlib's crc32) of every byte before it.
   Loading checks the magic, the version, the size, the checksum, then every count, name and
   number, so a truncated, corrupted or foreign file is refused with a message saying which,
   never half-read. It reads the file a few kilobytes at a time, twice (the checksum first), so
   the process never holds a copy of the file beside the model it makes.

   This file writes the format and is the way in for both directions; intent_model_reader does
   the reading and checking, intent_model_format holds the layout's numbers and checksum, and
   intent_model_sample the hand-made model whose file the self-test knows byte for byte. */
#ifndef INTENT_MODEL_FILE_H
#define INTENT_MODEL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_error.h"
#include "intent_model.h"

#define INTENT_MODEL_MAGIC "CVINTENT"
#define INTENT_MODEL_VERSION 1
#define INTENT_MODEL_MAX_BYTES (1024u * 1024 * 1024) /* a larger file is refused unread */

/* Reads and validates the model file at path into a new model (the caller's); NULL with err
   (naming the file) when it cannot be read, is not a model, is of another version, is truncated
   or corrupted, or holds numbers that make no sense. */
intent_model_t *intent_model_file_load (const char *path, cv_error_t *err) CV_MUST_CHECK;

/* The same from size bytes in memory (borrowed). */
intent_model_t *intent_model_file_decode (const void *data, size_t size, cv_error_t *err) CV_MUST_CHECK;

/* The model (borrowed) in its file format, in a new buffer the caller frees, of *size bytes;
   never NULL (out of memory aborts, see cv_alloc.h). */
uint8_t *intent_model_file_encode (const intent_model_t *model, size_t *size);

/* The size of the model's file, in bytes. */
size_t intent_model_file_size (const intent_model_t *model);

/* Writes the model (borrowed) to path atomically: a temporary file beside it, synced, then
   renamed over it, so a reader sees the old model or the new, never part of one. -1 with err on
   failure. */
int intent_model_file_save (const intent_model_t *model, const char *path, cv_error_t *err) CV_MUST_CHECK;

void intent_model_file_test (bool verbose);

#endif
