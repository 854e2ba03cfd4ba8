/* The slot patterns: how customers write each kind of slot intent_slots finds (amounts, dates,
   card digits, references, countries, currencies), as PCRE2 sources in reading order, and how a
   match of each becomes a value (its form: the named groups and the mark it reads).

   A kind's spans are claimed before the next kind's patterns run (intent_slots.h gives the order
   and the decisions on ambiguous text that these patterns make). Sources name the agent's
   lexicon by placeholders that intent_lexicon_expand replaces; intent_slots compiles them with
   INTENT_SLOTS_PATTERN_OPTIONS. Digits are [0-9], never \d: with UCP, \d takes any script's
   digits, which intent_forms does not read. Constant data. */
#ifndef INTENT_SLOTS_PATTERNS_H
#define INTENT_SLOTS_PATTERNS_H

#include <stdbool.h>
#include <stddef.h>

/* Caseless throughout; (?-i:...) marks the few spellings that must keep their case ("TRY", "US"). */
#define INTENT_SLOTS_PATTERN_OPTIONS (PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_DUPNAMES | PCRE2_NEVER_BACKSLASH_C)

/* What a pattern finds. */
typedef enum {
    INTENT_SLOT_BLOCK, /* looks like a slot but is not one: claims its span, gives nothing */
    INTENT_SLOT_TRANSACTION,
    INTENT_SLOT_TRANSFER,
    INTENT_SLOT_DATE,
    INTENT_SLOT_CARD,
    INTENT_SLOT_AMOUNT,
    INTENT_SLOT_CURRENCY,
    INTENT_SLOT_COUNTRY,
} intent_slot_kind_t;

/* How a match becomes a value: which named groups and mark it reads. */
typedef enum {
    INTENT_SLOT_FORM_NONE,     /* nothing: a blocker */
    INTENT_SLOT_FORM_REF,      /* group ref */
    INTENT_SLOT_FORM_YMD,      /* groups d, m and optional y (numbers) */
    INTENT_SLOT_FORM_NAMED,    /* mark = month number, group d, optional group y */
    INTENT_SLOT_FORM_RELATIVE, /* mark = days from the reference date */
    INTENT_SLOT_FORM_AGO,      /* group n (a count), mark = unit: d, w (week), f (fortnight), m (month) */
    INTENT_SLOT_FORM_WEEKDAY,  /* mark = ISO weekday (1 Monday), optional group dir (next/coming: ahead) */
    INTENT_SLOT_FORM_CARD,     /* group last4 */
    INTENT_SLOT_FORM_AMOUNT,   /* group num, mark = ISO 4217 code or "-" or none */
    INTENT_SLOT_FORM_CODE,     /* mark = the value (ISO code) or "-" for a word that names none */
} intent_slot_form_t;

/* One way of writing a slot: {CUR} (any currency), {SIGN} (currency signs and codes), {COUNTRY},
   {DEMONYM}, {TRANSACTION_ID} and {TRANSFER_ID} in source stand for the agent file's lexicon
   (intent_lexicon_expand): alternations with a (*MARK) per entry naming its code, and the bank's
   ids. */
typedef struct {
    intent_slot_kind_t kind;
    intent_slot_form_t form;
    const char *source;
} intent_slot_spec_t;

/* The patterns, in reading order; *count is set to their number. Borrowed, constant. */
const intent_slot_spec_t *intent_slots_patterns_specs (size_t *count);

void intent_slots_patterns_test (bool verbose);

#endif
