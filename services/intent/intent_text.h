/* A customer's text normalised and split into words, the input of the intent model's features.

   Normalisation, in order: the input is cut at INTENT_TEXT_MAX_BYTES (at a character boundary);
   bytes that are not valid UTF-8 are read as Latin-1, a NUL as a space, so no input is refused;
   curly quotes and apostrophes become ASCII and the Turkish dotted capital I becomes a plain "i"
   (a language-neutral fold: "İstanbul" and "Istanbul" meet); then NFKC with Unicode case folding
   and default-ignorables removed (utf8proc): "CAFÉ" is "café", "Straße" is "strasse", fullwidth
   "ＣＡＲＤ" is "card", zero-width joiners and emoji variation selectors vanish.

   Words are runs of letters, combining marks and digits. An apostrophe between two word
   characters is dropped and the word joined ("don't" and "dont" are one word, as customers write
   both). Currency signs and other symbols, emoji among them, are words of one character each
   (INTENT_TEXT_SYMBOLS): "£" and "🙁" carry meaning. Emoji skin-tone modifiers are dropped.
   Punctuation, other symbols, spaces and controls separate words and are dropped. Digits follow
   the digit mode: kept, each run made one "0", or each digit made "0" with the run's length kept
   up to four ("4417" -> "0000", "20" -> "00"): the shape of an amount or a card's last digits is
   signal, its value is not. A word longer than INTENT_TEXT_WORD_MAX_BYTES is cut (at a character
   boundary); words past INTENT_TEXT_MAX_WORDS or INTENT_TEXT_NORMAL_MAX_BYTES are dropped.

   An instance holds its buffers, sized once at creation, and the words of the last text it was
   given: normalising allocates nothing. It serves one thread. */
#ifndef INTENT_TEXT_H
#define INTENT_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_envelope.h"

#define INTENT_TEXT_MAX_BYTES CV_TEXT_MAX_BYTES /* input beyond this is not read */
#define INTENT_TEXT_WORD_MAX_BYTES 48           /* a longer word is cut */
#define INTENT_TEXT_NORMAL_MAX_BYTES 4096       /* the words, joined by spaces */
#define INTENT_TEXT_MAX_WORDS 1024

/* Normalisation options, a bit set stored in the model file so that training and prediction
   agree. The digit mode takes the two low bits. */
#define INTENT_TEXT_DIGITS_KEEP 0x0u  /* digits as written */
#define INTENT_TEXT_DIGITS_RUN 0x1u   /* each run of digits is "0" */
#define INTENT_TEXT_DIGITS_SHAPE 0x2u /* each digit is "0", a run's length kept up to 4 */
#define INTENT_TEXT_DIGITS_MASK 0x3u
#define INTENT_TEXT_SYMBOLS 0x4u     /* currency signs and other symbols (emoji) are words */
#define INTENT_TEXT_KNOWN_FLAGS 0x7u /* every bit this build knows */
#define INTENT_TEXT_DEFAULT_FLAGS (INTENT_TEXT_DIGITS_SHAPE | INTENT_TEXT_SYMBOLS)

typedef struct _intent_text_t intent_text_t;

/* A normaliser with the given option bits (which must be within INTENT_TEXT_KNOWN_FLAGS, with
   a digit mode of 0..2); never NULL. */
intent_text_t *intent_text_new (unsigned flags);
void intent_text_destroy (intent_text_t **self_p);

/* The option bits given at creation. */
unsigned intent_text_flags (const intent_text_t *self);

/* Normalises the size bytes at text (any bytes: NUL-terminated or not, valid UTF-8 or not) and
   splits them into words, replacing the previous text's. Returns the number of words. */
size_t intent_text_set (intent_text_t *self, const char *text, size_t size);

/* The number of words of the current text. */
size_t intent_text_count (const intent_text_t *self);

/* Word index of the current text, NUL-terminated, borrowed until the next intent_text_set;
   its length in bytes in *size when size is not NULL. */
const char *intent_text_word (const intent_text_t *self, size_t index, size_t *size);

/* The words of the current text joined by single spaces ("" for none); borrowed. */
const char *intent_text_normal (const intent_text_t *self);

void intent_text_test (bool verbose);

#endif
