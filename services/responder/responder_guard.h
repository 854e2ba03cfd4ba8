/* The responder's output guardrails: what a rendered reply must look like before it leaves.

   A reply goes out with its whitespace collapsed (templates come from folded YAML and values
   from database rows, either may carry newlines, tabs or runs of spaces), cut to a byte limit
   at a UTF-8 boundary, and only when it holds nothing that looks like an internal field or a
   failure's insides: a template placeholder, a stack trace, an exception, a database error,
   an envelope field name, a number of more than 11 digits (a whole card or account number: only
   a card's last four digits may show), conveyor's own request or trace ids. Such a reply is
   refused, not repaired: the caller renders the next rung of its ladder instead. */
#ifndef RESPONDER_GUARD_H
#define RESPONDER_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"
#include "cv_personal.h"

/* Returns a cleaned copy of text that may be sent, malloc'd for the caller to free, at most
   max_bytes long; or NULL with err (INVALID, field "reply.text") saying why text must not leave:
   it is not valid UTF-8, nothing is left once whitespace is collapsed, or it holds a marker of
   internal data (the message names the marker), and *rule (when rule is not NULL; NULL when the
   text passed) the rule's name, for the counts: invalid_utf8, empty, placeholder, stack_trace,
   exception, crash_report, database_error, error_message, connection_url, envelope_field,
   card_number, internal_id. */
char *responder_guard_clean (const char *text, size_t max_bytes, const char **rule, cv_error_t *err) CV_MUST_CHECK;

/* Whether an LLM's reply shows only the personal data (cv_personal: e-mail addresses, phone
   numbers, IBANs, card numbers) that known (what it was given: the visible facts, the customer's
   words) holds, each equal in its normal form to one that cv_personal finds in known: 0, or -1 with err (INVALID, field
   "reply.text") naming the kind of the first that known does not hold. Such a value is another customer's, or made up:
   either way it must not reach this customer. A reply too costly to scan is refused. The rule's name, for the counts,
   is RESPONDER_GUARD_PERSONAL_DATA. */
#define RESPONDER_GUARD_PERSONAL_DATA "personal_data"
int responder_guard_personal (const cv_personal_t *personal, const char *reply, const char *known,
                              cv_error_t *err) CV_MUST_CHECK;

void responder_guard_test (bool verbose);

#endif
