/* UTF-8 validation for text that crosses a trust boundary. */
#include "cv_utf8.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool
cv_utf8_valid (const char *text, size_t size)
{
    const uint8_t *p = (const uint8_t *) text;
    const uint8_t *end = p + size;
    while (p < end) {
        uint8_t c = *p;
        if (c == 0)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t length;
        uint32_t min, code;
        if ((c & 0xE0) == 0xC0) {
            length = 2, min = 0x80, code = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            length = 3, min = 0x800, code = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            length = 4, min = 0x10000, code = c & 0x07;
        } else
            return false;
        if ((size_t) (end - p) < length)
            return false;
        for (size_t i = 1; i < length; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            code = (code << 6) | (p[i] & 0x3F);
        }
        if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return false;
        p += length;
    }
    return true;
}

size_t
cv_utf8_length (const char *text, size_t size)
{
    size_t count = 0;
    for (size_t i = 0; i < size; i++)
        if (((uint8_t) text[i] & 0xC0) != 0x80)
            count++;
    return count;
}

size_t
cv_utf8_prefix (const char *text, size_t max_bytes)
{
    size_t size = strnlen (text, max_bytes + 1);
    if (size <= max_bytes)
        return size;
    size = max_bytes;
    while (size > 0 && ((uint8_t) text[size] & 0xC0) == 0x80)
        size--; /* text[size], the first byte left out, continues a code point: leave it all out */
    return size;
}

void
cv_utf8_test (bool verbose)
{
    const char *good[] = {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac 12", "\xf0\x9f\x92\xb3 card"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert (cv_utf8_valid (good[i], strlen (good[i])));
    const char *bad[] = {
        "\xc3",             /* truncated */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xff",             /* never valid */
        "a\x80z",           /* stray continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert (!cv_utf8_valid (bad[i], strlen (bad[i])));
    assert (!cv_utf8_valid ("a\0b", 3));
    assert (cv_utf8_length ("caf\xc3\xa9", 5) == 4);
    /* prefixes end between code points */
    assert (cv_utf8_prefix ("caf\xc3\xa9", 10) == 5 && cv_utf8_prefix ("caf\xc3\xa9", 5) == 5);
    assert (cv_utf8_prefix ("caf\xc3\xa9", 4) == 3 && cv_utf8_prefix ("caf\xc3\xa9", 3) == 3);
    assert (cv_utf8_prefix ("\xf0\x9f\x92\xb3!", 3) == 0 && cv_utf8_prefix ("\xf0\x9f\x92\xb3!", 4) == 4);
    assert (cv_utf8_prefix ("", 0) == 0 && cv_utf8_prefix ("ab", 0) == 0);
    if (verbose)
        printf ("cv_utf8: ok\n");
}
