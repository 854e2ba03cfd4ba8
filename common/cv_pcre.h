/* PCRE2 for conveyor's own pattern tables (cv_injection, cv_personal): each pattern compiled once,
   JIT-compiled where the machine allows it, and matched under limits that bound what a crafted
   text can cost. The compiled codes and the context are read-only after they are made: any
   thread may match with them, each with its own match data. */
#ifndef CV_PCRE_H
#define CV_PCRE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <stdint.h>

#include <pcre2.h>

#include "cv_error.h"

/* The options every table's patterns take: UTF-8 text, Unicode classes, no \C. */
#define CV_PCRE_OPTIONS (PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C)

/* A match context with the limits: enough for simple patterns over a few kB of text. NULL when
   out of memory. */
pcre2_match_context *cv_pcre_context_new (void);

/* A copy of size bytes of text, NUL-terminated and followed by CV_PCRE_PAD zero bytes, to match
   in: PCRE2's JIT reads the subject in 16-byte chunks up to 15 bytes past its end (never across
   a page), and in a copy those reads see only bytes of its own, initialised, so that memcheck has
   nothing to report whatever follows the caller's string. Malloc'd. */
#define CV_PCRE_PAD 16
char *cv_pcre_subject (const char *text, size_t size);

/* pattern compiled with options, or NULL with err (INTERNAL) naming what (the table's entry) and
   PCRE2's reason and offset. */
pcre2_code *cv_pcre_compile (const char *pattern, uint32_t options, const char *what, cv_error_t *err) CV_MUST_CHECK;

#endif
