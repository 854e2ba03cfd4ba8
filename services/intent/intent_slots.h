/* The intent worker's slots: the amounts, dates, card digits, references, countries and currencies
   a customer's text mentions, found by rules and each given in one normal form.

   intent_slots_extract returns a JSON object with one key per kind of slot the text mentions (a
   kind it does not mention is absent, so text with none gives {}):

     amount           {"value": "12.50", "currency": "EUR"}: value is a decimal string with a dot,
                      no grouping and the currency's minor digits (two; none for the agent file's
                      slots.no_minor_unit, JPY, KRW and ISK in the demo, when the fraction is zero);
                      currency is ISO 4217, absent when the text names none ("charged 12.50") or
                      one that is not a single currency ("100 kroner")
     date             "2026-03-15" (ISO 8601); relative dates count from the reference date
     card_last4       "4417"
     transaction_ref  "tx-1-1-9": the bank's own ids (the agent file's slots.ids; the demo bank's
                      are tx-N-K-J) in lower case, as the bank writes them; other references
                      ("TX12345678", "transaction ID 12345") in upper case
     transfer_ref     "tr-1-1" (the demo bank's tr-N-J) or "TR-8842", the same way
     country          "ES" (ISO 3166-1 alpha-2)
     currency         "USD": a currency named outside an amount ("the rate for dollars")

   When the text mentions several distinct values of one kind, the plural key (amounts, dates,
   card_last4s, transaction_refs, transfer_refs, countries, currencies) lists them, distinct, in
   text order, and the singular key holds the first.

   Kinds are read in a fixed order — references; spans that only look like slots (IBANs, phone
   numbers, "account ending 1234", "American Express"); dates; card digits; amounts; currencies;
   countries — and each mention claims its span, so no text counts twice: "tx-1-1-9" is not a
   date, "15.03.2026" not an amount, "€12.50" not also a bare currency, "US dollars" not a country.

   Decisions on ambiguous text, all deliberate and tested:
   - Dates are day first (a European bank): 03/04/2026 is 3 April, 03/15/2026 no date. A two-digit
     year is 20YY. Day/month without a year counts only after a preposition ("on 14/03", "since
     20/12"): "24/7 support" is no date. Years outside 1900-2199 and impossible days (31/02/2026) are no date, and the
     span stays claimed, so they do not turn into amounts either.
   - A date without a year is the most recent one on or before the reference date: "15 March" said
     on 15 March is today; "29 February" is the last leap day.
   - A weekday — "last Tuesday", "on Tuesday", "since Tuesday", "Tuesday" — is the most recent one
     strictly before the reference date: customers call today "today", so a Tuesday named on a
     Tuesday is a week ago. "next"/"coming Tuesday" is the first one strictly after.
   - "last night" is yesterday; "tonight" and "this morning" are today; "N months ago" keeps the
     day of the month, clamped to the month's last day. "the 15th" alone, "last week" and "a few
     days ago" are no date.
   - An amount needs a currency, or else a money word before it ("charged", "paid", "balance",
     "transfer of"...) and either two decimals ("charged 18.90") or nothing but punctuation or a
     small word after it ("paid 40 for it"): "charged 3 times" and "I have 4417 points" are no
     amount. "$" is USD, "¥" JPY, "dollars"/"bucks" USD, "pounds"/"quid" GBP, "francs" CHF,
     "kronor" SEK; "kroner", "kr" and "pesos" name no single currency. "1.234" and "1,234" are a
     thousand and more, "12,50" twelve and a half; a sign is ignored.
   - card_last4 needs card context: "ending (in) 4417" (unless it is an account, IBAN, phone or
     period that ends so), "last four (digits) 4417", a masked number ("**** 4417"), "card 4417".
     The four digits must not run on into more digits (a full card number gives nothing) nor be
     followed by a currency ("card 1500 euros" is an amount).
   - Country names count anywhere; "US" only as "the US", "U.S." or "USA"; "Turkey" and "China"
     only capitalised (not the bird, not the plates); "America" not after South/Latin/Central/North.
     A demonym counts only before a bank or shop word ("a German website", "my Spanish bank").
     "Iceland" is the country, even when the customer meant the supermarket.

   The currencies, countries and demonyms, and the bank's id formats, are the agent file's (its
   `slots` section, read by intent_lexicon); the demo agent's choices are those above. The
   patterns themselves, by kind and in reading order, are intent_slots_patterns'. Pure logic, no
   I/O (but intent_slots_test_cases, which reads a file of cases). The compiled patterns are
   read-only once made, so every thread of a worker shares one intent_slots_t; what reading a
   text writes (PCRE2's match data, a copy of the text, the slots found, the error count) is in an
   intent_slots_scratch_t, one per thread. Every match runs under a match and depth limit; a
   pattern run that hits one counts as an error and ends that pattern's search for that text,
   never the extraction. */
#ifndef INTENT_SLOTS_H
#define INTENT_SLOTS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cv_config.h"
#include "cv_error.h"

#define INTENT_SLOTS_MATCH_LIMIT 10000 /* pcre2_set_match_limit, per start position */
#define INTENT_SLOTS_DEPTH_LIMIT 1000  /* pcre2_set_depth_limit (the interpreter's backtracking depth) */

typedef struct _intent_slots_t intent_slots_t;
typedef struct _intent_slots_scratch_t intent_slots_scratch_t;

/* Compiles the slot patterns, once, with the lexicon of agent's `slots` section (agent borrowed;
   without the section, no currency, country or bank id is found). NULL with err INVALID, naming
   the file, line and key, for a bad entry of the section; INTERNAL if a pattern does not compile,
   which is a bug in this file that the self-test catches. */
intent_slots_t *intent_slots_new (cv_config_t *agent, cv_error_t *err) CV_MUST_CHECK;
void intent_slots_destroy (intent_slots_t **self_p);

/* One thread's working memory for intent_slots_extract with slots (borrowed; it must outlive
   the scratch). NULL only when memory runs out. */
intent_slots_scratch_t *intent_slots_scratch_new (const intent_slots_t *slots);
void intent_slots_scratch_destroy (intent_slots_scratch_t **self_p);

/* Returns a new object (the caller's, to json_decref) of every slot found in text (NUL-terminated),
   with relative dates counted from year-month-day: the caller passes today's date in the bank's
   time zone, tests a fixed one. scratch was made for these slots and serves one thread at a time.
   The date must exist and its year lie in 1900-9000 (asserted: it comes from the caller's clock,
   not from a customer). NULL with err INVALID for text that is longer than CV_TEXT_MAX_BYTES or
   is not valid UTF-8, or INTERNAL when memory runs out. */
json_t *intent_slots_extract (const intent_slots_t *self, intent_slots_scratch_t *scratch, const char *text, int year,
                              int month, int day, cv_error_t *err) CV_MUST_CHECK;

/* Pattern runs through this scratch that ended in an error (a match limit, most likely) instead
   of a match or a miss. Worth a metric: it should stay at zero. */
size_t intent_slots_scratch_errors (const intent_slots_scratch_t *self);

/* For tests: asserts every case of the file at path, one JSON object a line ({"text", "slots":
   what the text gives, "on": the reference date when it is not 2026-03-18}; lines that start with
   # are comments), as self reads it, with no pattern run ending in an error; returns the number
   of cases. tests/unit/intent/slots.jsonl is the corpus: the self-test reads it with a lexicon of
   its own, the demo agent's test with the demo's. */
size_t intent_slots_test_cases (const intent_slots_t *self, const char *path, bool verbose);

void intent_slots_test (bool verbose);

#endif
