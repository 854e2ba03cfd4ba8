/* The words slots are read by, from the agent file's `slots` section: currencies (words, and
   signs or codes), the currencies without a minor unit, countries, demonyms, and the patterns of
   the bank's own ids.

   The section, all of it optional (an agent without one finds no currency, country or bank id):
       slots:
         currencies:      list, in matching order, of {word: PATTERN, code: ISO 4217} or
                          {sign: PATTERN, code: ...}; without a code, money that names no single
                          currency ("kroner")
         no_minor_unit:   [ISO 4217 code, ...]: amounts in these have no decimals ("¥1,000")
         countries:       list of {names: PATTERN or [PATTERN, ...], code: ISO 3166-1 alpha-2}
         demonyms:        the same, for words that name a country only before a place ("German")
         ids:             {transaction_ref: PATTERN, transfer_ref: PATTERN}
   Patterns are PCRE2 as intent_slots compiles them (caseless, UTF, Unicode properties). Each is
   compiled alone at load, and refused unless it does, captures nothing and carries no verbs or
   \Q: it is spliced into larger patterns. A bad entry, a code of the wrong form or an unknown key
   is refused with the file, the line and the key ("agent.yaml:61: slots.currencies[2].code: ...").

   Read-only once made. */
#ifndef INTENT_LEXICON_H
#define INTENT_LEXICON_H

#include <stdbool.h>

#include "cv_config.h"
#include "cv_error.h"

typedef struct _intent_lexicon_t intent_lexicon_t;

/* Which entries an alternation takes. */
typedef enum {
    INTENT_LEXICON_CURRENCIES, /* words, signs and codes */
    INTENT_LEXICON_SIGNS,      /* signs and codes only: what may stand before a number */
    INTENT_LEXICON_COUNTRIES,
    INTENT_LEXICON_DEMONYMS,
} intent_lexicon_list_t;

/* The bank's ids, by the slot they fill. */
typedef enum {
    INTENT_LEXICON_TRANSACTION_ID,
    INTENT_LEXICON_TRANSFER_ID,
    INTENT_LEXICON_ID_KINDS,
} intent_lexicon_id_t;

/* Reads and checks agent's `slots` section (agent borrowed: the lexicon copies what it keeps).
   NULL with err naming the file, line and key of the first bad entry. */
intent_lexicon_t *intent_lexicon_new (cv_config_t *agent, cv_error_t *err) CV_MUST_CHECK;
void intent_lexicon_destroy (intent_lexicon_t **self_p);

/* "(?:(?:PATTERN)(*:CODE)|...)" over the list's entries, in order: an alternation whose mark
   names the entry that matched ("-" for money that names no currency); "(?:(*FAIL))", which
   never matches, for an empty list. A new string, the caller's. */
char *intent_lexicon_alternation (const intent_lexicon_t *self, intent_lexicon_list_t list);

/* source with {CUR} (any currency: the currencies' alternation, not followed by a letter), {SIGN}
   (the same of signs and codes), {COUNTRY}, {DEMONYM}, {TRANSACTION_ID} and {TRANSFER_ID} replaced
   by what they stand for; other braces ({1,9}) stay. A new string, the caller's. */
char *intent_lexicon_expand (const intent_lexicon_t *self, const char *source);

/* The number of decimals amounts in the currency code take: 0 or 2. */
int intent_lexicon_decimals (const intent_lexicon_t *self, const char *code);

/* The pattern of the bank's ids of kind (borrowed), "(*FAIL)" when the agent names none. */
const char *intent_lexicon_id (const intent_lexicon_t *self, intent_lexicon_id_t kind);

void intent_lexicon_test (bool verbose);

#endif
