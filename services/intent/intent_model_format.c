/* The bytes of the intent model's file: its numbers, its checksum, its size. */
#include "intent_model_format.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "cv_assert.h"

uint8_t *
intent_model_format_put_u32 (uint8_t *p, uint32_t value)
{
    p[0] = (uint8_t) value;
    p[1] = (uint8_t) (value >> 8);
    p[2] = (uint8_t) (value >> 16);
    p[3] = (uint8_t) (value >> 24);
    return p + 4;
}

uint8_t *
intent_model_format_put_f32 (uint8_t *p, float value)
{
    uint32_t bits;
    memcpy (&bits, &value, sizeof bits);
    return intent_model_format_put_u32 (p, bits);
}

uint8_t *
intent_model_format_put_f32s (uint8_t *p, const float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        p = intent_model_format_put_f32 (p, values[i]);
    return p;
}

uint32_t
intent_model_format_get_u32 (const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

float
intent_model_format_get_f32 (const uint8_t *p)
{
    uint32_t bits = intent_model_format_get_u32 (p);
    float value;
    memcpy (&value, &bits, sizeof value);
    return value;
}

uint32_t
intent_model_format_crc (uint32_t crc, const uint8_t *data, size_t size)
{
    return (uint32_t) crc32_z (crc, data, size);
}

uint64_t
intent_model_format_size (uint64_t labels, uint64_t labels_bytes, uint64_t rows, uint64_t knots)
{
    return INTENT_MODEL_FORMAT_HEADER_SIZE + labels + labels_bytes + 4 * labels + 8 * knots + 8 * rows
           + 4 * rows * labels + INTENT_MODEL_FORMAT_CRC_SIZE;
}

void
intent_model_format_test (bool verbose)
{
    /* little-endian, and floats by their bits: -0 and NaN too */
    uint8_t bytes[16];
    assert (intent_model_format_put_u32 (bytes, 0x04030201u) == bytes + 4);
    assert (bytes[0] == 1 && bytes[1] == 2 && bytes[2] == 3 && bytes[3] == 4);
    assert (intent_model_format_get_u32 (bytes) == 0x04030201u);
    float values[] = {1.5f, -0.0f, NAN}, back[3];
    assert (intent_model_format_put_f32s (bytes, values, 3) == bytes + 12);
    for (size_t i = 0; i < 3; i++) {
        back[i] = intent_model_format_get_f32 (bytes + 4 * i);
        assert (memcmp (&back[i], &values[i], sizeof back[i]) == 0);
    }
    assert (intent_model_format_get_u32 (bytes) == 0x3fc00000u);
    assert (intent_model_format_put_f32 (bytes, 2.0f) == bytes + 4 && intent_model_format_get_f32 (bytes) == 2.0f);

    /* the header is 52 bytes; two labels of one byte, no row, one knot: 52 + 2 + 2 + 8 + 8 + 4 */
    assert (INTENT_MODEL_FORMAT_HEADER_SIZE == 52);
    assert (intent_model_format_size (2, 2, 0, 1) == 76);
    assert (intent_model_format_size (2, 2, 3, 1) == 76 + 3 * 8 + 3 * 4 * 2);

    /* the checksum is CRC-32/ISO-HDLC: its check value, whole or in parts */
    assert (intent_model_format_crc (0, (const uint8_t *) "123456789", 9) == 0xCBF43926u);
    assert (
        intent_model_format_crc (intent_model_format_crc (0, (const uint8_t *) "1234", 4), (const uint8_t *) "56789", 5)
        == 0xCBF43926u);
    if (verbose)
        printf ("intent_model_format: ok\n");
}
