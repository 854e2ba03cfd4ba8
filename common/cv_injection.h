/* Known prompt-injection phrasings in a customer's text: "ignore previous instructions", role
   markers ("system:", "<|im_start|>", "[INST]"), a new persona ("you are now", "developer mode"),
   asking for the prompt itself. Each kind has a name; a text is flagged with the kinds it holds.

   The patterns are PCRE2, caseless, on UTF-8 text whose runs of white space count as one; a text
   too costly to scan for a kind counts as holding it. They are written narrowly, so that a customer's ordinary message
   ("please ignore my previous message") is not flagged: a flag is a reason to keep the text away from an LLM's writing,
   not proof of an attack. Compiled once (cv_injection_new), matched from any thread. */
#ifndef CV_INJECTION_H
#define CV_INJECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_error.h"

/* At most this many kinds; a text is flagged with each at most once. */
#define CV_INJECTION_KINDS 4

typedef struct _cv_injection_t cv_injection_t;

/* The compiled phrasings, or NULL with err (INTERNAL: a pattern that does not compile, out of
   memory). */
cv_injection_t *cv_injection_new (cv_error_t *err) CV_MUST_CHECK;
void cv_injection_destroy (cv_injection_t **self_p);

/* The names of the kinds text (valid UTF-8, NUL-terminated) holds, in out, in a fixed order:
   ignore_instructions, role_marker, new_persona, prompt_leak; returns how many. */
size_t cv_injection_scan (const cv_injection_t *self, const char *text, const char *out[CV_INJECTION_KINDS]);

void cv_injection_test (bool verbose);

#endif
