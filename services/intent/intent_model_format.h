/* The bytes of the intent model's file (intent_model_file.h describes the layout): the sizes of
   its fixed parts, its little-endian numbers, its checksum and the size that a model's counts
   make. Shared by the writer (intent_model_file) and the reader (intent_model_reader), so that
   both read the layout from one place; no I/O. */
#ifndef INTENT_MODEL_FORMAT_H
#define INTENT_MODEL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INTENT_MODEL_FORMAT_MAGIC_SIZE 8
/* magic, version, file size, flags, 4 setting bytes, labels, rows, knots, default idf, coverage,
   threshold */
#define INTENT_MODEL_FORMAT_HEADER_SIZE (INTENT_MODEL_FORMAT_MAGIC_SIZE + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 4)
#define INTENT_MODEL_FORMAT_CRC_SIZE 4

/* Writes value at p, little-endian; returns p + 4. */
uint8_t *intent_model_format_put_u32 (uint8_t *p, uint32_t value);
/* Writes value's IEEE 754 bits at p, little-endian; returns p + 4. */
uint8_t *intent_model_format_put_f32 (uint8_t *p, float value);
/* Writes count values from p on; returns the byte after the last. */
uint8_t *intent_model_format_put_f32s (uint8_t *p, const float *values, size_t count);
/* The number written at p by the put functions. */
uint32_t intent_model_format_get_u32 (const uint8_t *p);
float intent_model_format_get_f32 (const uint8_t *p);

/* CRC-32/ISO-HDLC, as the file's last four bytes hold it: zlib's crc32 of size bytes at data,
   continuing from crc (0 to start). */
uint32_t intent_model_format_crc (uint32_t crc, const uint8_t *data, size_t size);

/* The file size for a model of these counts; labels_bytes is the sum of the labels' lengths.
   Computed in 64 bits from 32-bit counts, so it cannot overflow. */
uint64_t intent_model_format_size (uint64_t labels, uint64_t labels_bytes, uint64_t rows, uint64_t knots);

void intent_model_format_test (bool verbose);

#endif
