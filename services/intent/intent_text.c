/* A customer's text normalised (NFKC, case-folded, digits and punctuation handled) and split into words. */
#include "intent_text.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "cv_alloc.h"

/* Each input byte is at most two bytes once invalid ones are read as Latin-1. */
#define CLEAN_MAX_BYTES (2 * INTENT_TEXT_MAX_BYTES)
/* NFKC can make one character many (U+FDFA is 18); a text that needs more than this is cut
   until it fits, which only contrived input does. */
#define CODEPOINTS_MAX (4 * INTENT_TEXT_MAX_BYTES)
#define SHAPE_MAX_DIGITS 4
#define NORMALISE_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE)

struct _intent_text_t {
    unsigned flags;
    char clean[CLEAN_MAX_BYTES + 1];               /* the input as valid UTF-8 */
    utf8proc_int32_t codepoints[CODEPOINTS_MAX];   /* normalised */
    char words[INTENT_TEXT_NORMAL_MAX_BYTES + 1];  /* each word NUL-terminated */
    char normal[INTENT_TEXT_NORMAL_MAX_BYTES + 1]; /* the same bytes, joined by spaces */
    size_t used;                                   /* bytes of words (and normal) in use */
    uint16_t start[INTENT_TEXT_MAX_WORDS];
    uint8_t length[INTENT_TEXT_MAX_WORDS];
    size_t count;
};

/* The state of the word being written. */
typedef struct {
    bool open;       /* a word is being written */
    bool full;       /* it reached INTENT_TEXT_WORD_MAX_BYTES: the rest is skipped */
    bool apostrophe; /* an apostrophe followed its last character */
    bool done;       /* the text's buffers are full: nothing more is taken */
    size_t digits;   /* length of the run of digits it ends with */
} word_state_t;

intent_text_t *
intent_text_new (unsigned flags)
{
    assert ((flags & ~INTENT_TEXT_KNOWN_FLAGS) == 0);
    assert ((flags & INTENT_TEXT_DIGITS_MASK) <= INTENT_TEXT_DIGITS_SHAPE);
    intent_text_t *self = cv_calloc (1, sizeof *self);
    self->flags = flags;
    return self;
}

void
intent_text_destroy (intent_text_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

unsigned
intent_text_flags (const intent_text_t *self)
{
    assert (self);
    return self->flags;
}

/* The code point of the well-formed UTF-8 sequence at p (of at most avail bytes) and its length
   in *length, or -1 when the bytes there are not one (overlong, surrogate, truncated...). */
static int32_t
s_decode (const uint8_t *p, size_t avail, size_t *length)
{
    uint8_t c = p[0];
    if (c < 0x80) {
        *length = 1;
        return c;
    }
    size_t size;
    uint32_t min, code;
    if ((c & 0xE0) == 0xC0)
        size = 2, min = 0x80, code = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        size = 3, min = 0x800, code = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        size = 4, min = 0x10000, code = c & 0x07;
    else
        return -1;
    if (avail < size)
        return -1;
    for (size_t i = 1; i < size; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        code = (code << 6) | (p[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return -1;
    *length = size;
    return (int32_t) code;
}

/* Copies at most INTENT_TEXT_MAX_BYTES of text into self->clean as valid UTF-8: a byte that
   starts no well-formed sequence is read as Latin-1, a NUL as a space. Returns the bytes written. */
static size_t
s_clean (intent_text_t *self, const char *text, size_t size)
{
    if (size > INTENT_TEXT_MAX_BYTES) {
        size = INTENT_TEXT_MAX_BYTES;
        /* Do not cut a character in two: back off over continuation bytes (three at most). */
        for (int back = 0; back < 3 && size > 0 && ((uint8_t) text[size] & 0xC0) == 0x80; back++)
            size--;
    }
    const uint8_t *p = (const uint8_t *) text;
    size_t used = 0;
    for (size_t at = 0; at < size;) {
        size_t length;
        int32_t code = s_decode (p + at, size - at, &length);
        if (code == 0)
            self->clean[used++] = ' ';
        else if (code > 0) {
            memcpy (self->clean + used, p + at, length);
            used += length;
        } else {
            length = 1;
            used += (size_t) utf8proc_encode_char (p[at], (utf8proc_uint8_t *) self->clean + used);
        }
        at += length;
    }
    assert (used <= CLEAN_MAX_BYTES);
    self->clean[used] = '\0';
    return used;
}

/* Applied by utf8proc to each code point before it normalises. */
static utf8proc_int32_t
s_fold (utf8proc_int32_t code, void *data)
{
    switch (code) {
    case 0x0130: /* LATIN CAPITAL LETTER I WITH DOT ABOVE: case-folds to i + U+0307 otherwise */
        return 'i';
    case 0x2018: /* ‘ */
    case 0x2019: /* ’ */
    case 0x201A: /* ‚ */
    case 0x201B: /* ‛ */
    case 0x2032: /* ′ */
    case 0x02BC: /* ʼ MODIFIER LETTER APOSTROPHE */
    case 0x00B4: /* ´ typed for an apostrophe */
    case 0x0060: /* ` likewise */
        return '\'';
    case 0x201C: /* “ */
    case 0x201D: /* ” */
    case 0x201E: /* „ */
    case 0x201F: /* ‟ */
    case 0x00AB: /* « */
    case 0x00BB: /* » */
        return '"';
    default:
        return code;
    }
}

/* Decomposes self->clean (size bytes) into self->codepoints as NFKC case-folded; returns the
   number of code points. A text too long for the buffer once decomposed is cut until it fits. */
static size_t
s_normalise (intent_text_t *self, size_t size)
{
    while (true) {
        utf8proc_ssize_t count =
            utf8proc_decompose_custom ((const utf8proc_uint8_t *) self->clean, (utf8proc_ssize_t) size,
                                       self->codepoints, CODEPOINTS_MAX, NORMALISE_OPTIONS, s_fold, NULL);
        /* The input is valid UTF-8 and the options are fixed: an error here is a bug. */
        assert (count >= 0);
        if (count <= CODEPOINTS_MAX) {
            utf8proc_ssize_t composed = utf8proc_normalize_utf32 (self->codepoints, count, NORMALISE_OPTIONS);
            assert (composed >= 0 && composed <= count);
            return (size_t) composed;
        }
        size /= 2;
        while (size > 0 && ((uint8_t) self->clean[size] & 0xC0) == 0x80)
            size--;
    }
}

/* Ends the word being written, if any. */
static void
s_end_word (intent_text_t *self, word_state_t *word)
{
    if (word->open) {
        self->words[self->used] = '\0';
        self->normal[self->used] = ' ';
        self->used++;
        self->count++;
    }
    word->open = word->full = word->apostrophe = false;
    word->digits = 0;
}

/* Appends the UTF-8 of code to the word being written, opening one if need be. */
static void
s_append (intent_text_t *self, word_state_t *word, utf8proc_int32_t code)
{
    uint8_t bytes[4];
    size_t size = (size_t) utf8proc_encode_char (code, bytes);
    if (!word->open) {
        /* a new word needs room for one character and its terminator */
        if (self->count == INTENT_TEXT_MAX_WORDS || self->used + size + 1 > INTENT_TEXT_NORMAL_MAX_BYTES) {
            word->done = true;
            return;
        }
        self->start[self->count] = (uint16_t) self->used;
        self->length[self->count] = 0;
        word->open = true;
    }
    size_t length = self->length[self->count];
    if (word->full || length + size > INTENT_TEXT_WORD_MAX_BYTES
        || self->used + size + 1 > INTENT_TEXT_NORMAL_MAX_BYTES) {
        word->full = true;
        return;
    }
    memcpy (self->words + self->used, bytes, size);
    memcpy (self->normal + self->used, bytes, size);
    self->used += size;
    self->length[self->count] = (uint8_t) (length + size);
}

/* Takes one letter, mark or digit of a word. */
static void
s_word_character (intent_text_t *self, word_state_t *word, utf8proc_int32_t code, utf8proc_category_t category)
{
    word->apostrophe = false; /* between two word characters: dropped, the word goes on */
    if (category != UTF8PROC_CATEGORY_ND) {
        word->digits = 0;
        s_append (self, word, code);
        return;
    }
    unsigned mode = self->flags & INTENT_TEXT_DIGITS_MASK;
    word->digits++;
    if (mode == INTENT_TEXT_DIGITS_KEEP)
        s_append (self, word, code);
    else if (mode == INTENT_TEXT_DIGITS_RUN ? word->digits == 1 : word->digits <= SHAPE_MAX_DIGITS)
        s_append (self, word, '0');
}

/* Splits self->codepoints (count of them) into words. */
static void
s_split (intent_text_t *self, size_t count)
{
    word_state_t word = {0};
    for (size_t i = 0; i < count && !word.done; i++) {
        utf8proc_int32_t code = self->codepoints[i];
        utf8proc_category_t category = utf8proc_category (code);
        switch (category) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            s_word_character (self, &word, code, category);
            break;
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
            /* a mark belongs to the letter before it; with none (after a space or a symbol) it
               is dropped */
            if (word.open && !word.apostrophe)
                s_append (self, &word, code);
            break;
        case UTF8PROC_CATEGORY_SC:
        case UTF8PROC_CATEGORY_SO:
            s_end_word (self, &word);
            if (self->flags & INTENT_TEXT_SYMBOLS) {
                s_append (self, &word, code);
                s_end_word (self, &word);
            }
            break;
        case UTF8PROC_CATEGORY_SK:
            /* skin tones (U+1F3FB..U+1F3FF) qualify the emoji before them: dropped */
            if (code >= 0x1F3FB && code <= 0x1F3FF)
                break;
            s_end_word (self, &word);
            break;
        default:
            if (code == '\'' && word.open && !word.apostrophe) {
                word.apostrophe = true; /* decided by what follows */
                break;
            }
            s_end_word (self, &word);
            break;
        }
    }
    s_end_word (self, &word);
}

size_t
intent_text_set (intent_text_t *self, const char *text, size_t size)
{
    assert (self);
    assert (text || size == 0);
    self->used = 0;
    self->count = 0;
    size_t clean = s_clean (self, text ? text : "", size);
    size_t count = s_normalise (self, clean);
    s_split (self, count);
    /* s_end_word left a space after the last word */
    if (self->used > 0)
        self->used--;
    self->words[self->used] = '\0';
    self->normal[self->used] = '\0';
    return self->count;
}

size_t
intent_text_count (const intent_text_t *self)
{
    assert (self);
    return self->count;
}

const char *
intent_text_word (const intent_text_t *self, size_t index, size_t *size)
{
    assert (self);
    assert (index < self->count);
    if (size)
        *size = self->length[index];
    return self->words + self->start[index];
}

const char *
intent_text_normal (const intent_text_t *self)
{
    assert (self);
    return self->normal;
}

/* Asserts that text normalises to expected (words joined by spaces). */
static void
s_expect (intent_text_t *self, const char *text, size_t size, const char *expected, bool verbose)
{
    intent_text_set (self, text, size);
    if (verbose)
        printf ("  [%.*s] -> [%s]\n", (int) (size > 60 ? 60 : size), text, intent_text_normal (self));
    cv_assert_that (!(strcmp (intent_text_normal (self), expected) != 0),
                    "intent_text: [%.*s] gave [%s], expected [%s]", (int) size, text, intent_text_normal (self),
                    expected);
    /* the words and the joined form agree */
    size_t used = 0;
    for (size_t i = 0; i < intent_text_count (self); i++) {
        size_t length;
        const char *word = intent_text_word (self, i, &length);
        assert (length > 0 && length <= INTENT_TEXT_WORD_MAX_BYTES);
        assert (strlen (word) == length);
        assert (memcmp (expected + used, word, length) == 0);
        used += length + 1;
    }
}

#define EXPECT(self, text, expected) s_expect ((self), (text), strlen (text), (expected), verbose)

void
intent_text_test (bool verbose)
{
    intent_text_t *text = intent_text_new (INTENT_TEXT_DEFAULT_FLAGS);
    assert (text);
    assert (intent_text_flags (text) == INTENT_TEXT_DEFAULT_FLAGS);

    /* case folding, NFKC, Unicode letters */
    EXPECT (text, "CAFÉ", "café");
    EXPECT (text, "CAFE\xcc\x81", "café");                   /* E + combining acute composes */
    EXPECT (text, "Straße STRASSE", "strasse strasse");      /* German sharp s folds to ss */
    EXPECT (text, "İSTANBUL Istanbul", "istanbul istanbul"); /* Turkish dotted I: a plain i */
    EXPECT (text, "ıi", "ıi");                               /* dotless i is a letter of its own */
    EXPECT (text, "ＣＡＲＤ　ｆｅｅ", "card fee");           /* fullwidth letters and space */
    EXPECT (text, "Ｏｎｅ²", "one0");                        /* superscript two is a digit */
    EXPECT (text, "ΣΊΣΥΦΟΣ", "σίσυφοσ");                     /* final sigma folds to sigma */
    EXPECT (text, "ﬁnance", "finance");                      /* ligature */

    /* apostrophes, quotes and punctuation */
    EXPECT (text, "Don’t I’m", "dont im");
    EXPECT (text, "don't dont", "dont dont");
    EXPECT (text, "‘card’ “fee”", "card fee");
    EXPECT (text, "'quoted' rock'n'roll", "quoted rocknroll");
    EXPECT (text, "top-up, please! (now?)", "top up please now");
    EXPECT (text, "a\tb\nc\r\nd", "a b c d");

    /* digits: each run keeps its shape up to four digits */
    EXPECT (text, "card ending 4417, £20.50 on 2nd", "card ending 0000 £ 00 00 on 0nd");
    EXPECT (text, "1234567890", "0000");
    EXPECT (text, "２０", "00"); /* fullwidth digits */

    /* emoji: a word each; skin tones, joiners and variation selectors dropped */
    EXPECT (text, "thanks👍🏽!", "thanks 👍");
    EXPECT (text, "❤️ card", "❤ card");
    EXPECT (text, "👨‍👩‍👧", "👨 👩 👧");
    EXPECT (text, "€5 or $5", "€ 0 or $ 0");

    /* empty and blank */
    EXPECT (text, "", "");
    assert (intent_text_count (text) == 0);
    EXPECT (text, "  ?! ... ", "");
    assert (intent_text_set (text, NULL, 0) == 0);

    /* invalid UTF-8 is read as Latin-1; NUL is a space */
    s_expect (text, "caf\xe9 \xff\xfe x", 9, "café ÿþ x", verbose);
    s_expect (text, "a\0b", 3, "a b", verbose);
    s_expect (text, "\xc3", 1, "ã", verbose);            /* a truncated sequence */
    s_expect (text, "\xed\xa0\x80z", 4, "í z", verbose); /* a surrogate: three Latin-1 characters */

    /* other digit modes and symbols off */
    intent_text_t *run = intent_text_new (INTENT_TEXT_DIGITS_RUN);
    EXPECT (run, "card 4417 £20.50 2nd", "card 0 0 0 0nd");
    EXPECT (run, "thanks 👍 €", "thanks");
    intent_text_destroy (&run);
    intent_text_t *keep = intent_text_new (INTENT_TEXT_DIGITS_KEEP | INTENT_TEXT_SYMBOLS);
    EXPECT (keep, "card 4417 £20", "card 4417 £ 20");
    intent_text_destroy (&keep);
    assert (!keep);

    /* a 10,000-character word is cut, the text at INTENT_TEXT_MAX_BYTES */
    size_t size = 10000;
    char *long_text = cv_malloc (size + 16);
    memset (long_text, 'a', size);
    memcpy (long_text + size, " card", 6);
    assert (intent_text_set (text, long_text, size + 5) == 1); /* " card" is past the cut */
    size_t length;
    intent_text_word (text, 0, &length);
    assert (length == INTENT_TEXT_WORD_MAX_BYTES);
    /* multi-byte letters are not cut in two */
    for (size_t i = 0; i + 2 <= size; i += 2)
        memcpy (long_text + i, "\xc3\xa9", 2);
    assert (intent_text_set (text, long_text, size) == 1);
    const char *word = intent_text_word (text, 0, &length);
    assert (length == INTENT_TEXT_WORD_MAX_BYTES && length % 2 == 0);
    assert (memcmp (word, "\xc3\xa9", 2) == 0);
    /* many one-byte words: at most INTENT_TEXT_MAX_WORDS, within the buffers */
    memset (long_text, '$', size);
    assert (intent_text_set (text, long_text, size) == INTENT_TEXT_MAX_WORDS);
    assert (strlen (intent_text_normal (text)) == 2 * INTENT_TEXT_MAX_WORDS - 1);
    /* symbols that NFKC expands many times over stay within the buffers */
    for (size_t i = 0; i + 3 <= size; i += 3)
        memcpy (long_text + i, "\xef\xb7\xba", 3); /* U+FDFA: 18 code points each */
    intent_text_set (text, long_text, size);
    assert (strlen (intent_text_normal (text)) <= INTENT_TEXT_NORMAL_MAX_BYTES);
    /* every byte value, as garbage, never breaks it */
    for (size_t i = 0; i < size; i++)
        long_text[i] = (char) (i * 7919 % 256);
    intent_text_set (text, long_text, size);
    assert (strlen (intent_text_normal (text)) <= INTENT_TEXT_NORMAL_MAX_BYTES);
    free (long_text);

    intent_text_destroy (&text);
    intent_text_destroy (&text); /* idempotent */
    if (verbose)
        printf ("intent_text: ok\n");
}
