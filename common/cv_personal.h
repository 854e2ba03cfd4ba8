/* Personal data in free text: e-mail addresses, phone numbers in international form (+ or 00 and
   the country code), IBANs and card numbers (13 to 19 digits, spaced or not). Found by PCRE2
   patterns written for the forms a customer or a model writes them in; a date, an amount, a
   tracking or a reference number is not one of them.

   For the responder's guardrails (an LLM's reply may show such data only when the facts it was
   given or the customer's own words hold it) and for redacting logs. Each found value is named by
   its kind and its place in the text, and can be compared with another text's in a normal form
   (cv_personal_normal: e-mail addresses lowercased, numbers without their spaces, dots, dashes
   and brackets). Compiled once (cv_personal_new), matched from any thread. */
#ifndef CV_PERSONAL_H
#define CV_PERSONAL_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"

typedef enum { CV_PERSONAL_EMAIL, CV_PERSONAL_PHONE, CV_PERSONAL_IBAN, CV_PERSONAL_CARD } cv_personal_kind_t;
#define CV_PERSONAL_KINDS 4

/* "email", "phone", "iban", "card". */
const char *cv_personal_kind_name (cv_personal_kind_t kind);

typedef struct {
    cv_personal_kind_t kind;
    size_t start; /* byte offsets in the text: [start, end) */
    size_t end;
} cv_personal_match_t;

typedef struct _cv_personal_t cv_personal_t;

/* The compiled patterns, or NULL with err (INTERNAL). */
cv_personal_t *cv_personal_new (cv_error_t *err) CV_MUST_CHECK;
void cv_personal_destroy (cv_personal_t **self_p);

/* The personal data in text (valid UTF-8, NUL-terminated), at most max of it in out, in the
   order of the kinds searched (e-mail addresses, IBANs, card numbers, phone numbers) and then of
   their places, a value within one found before left out (the
   digits of an IBAN are not also a card number); returns how many were found (only the first
   max are in out, and only those are compared for overlaps). -1 when text could not be scanned (too costly to match,
   out of memory): a caller must then treat it as holding personal data. */
long cv_personal_find (const cv_personal_t *self, const char *text, cv_personal_match_t *out, size_t max);

/* text (valid UTF-8) with each piece of personal data in it replaced by its kind in brackets
   ("[email]", "[phone]", "[iban]", "[card]"), malloc'd; a text that cannot be scanned is
   withheld whole. */
char *cv_personal_redact (const cv_personal_t *self, const char *text);

/* The normal form of size bytes of text as kind compares: for an e-mail address lowercased, for
   a number its letters uppercased and its spaces, dots, dashes and brackets left out (an IBAN
   written in groups of four is the IBAN), and a phone number's 00 prefix written +. Malloc'd. */
char *cv_personal_normal (cv_personal_kind_t kind, const char *text, size_t size);

void cv_personal_test (bool verbose);

#endif
