/* The intent worker's hand-written rules: the agent file's `intents` section compiled into PCRE2
   patterns, and the classification of a customer's text by the first pattern that matches.

   Rules are tried in file order, each intent's patterns in their order; the first match decides:
   the intent's name, confidence 1, method RULE, rule "<intent>:<pattern number from 1>", and the
   pattern's named groups that took part in the match as slots (name -> matched text). Text that
   no pattern matches is intent "unknown", confidence 0, method FALLBACK.

   Pure logic, no I/O but debug logs. The compiled rules are read-only once made, so every
   thread of a worker shares one intent_rules_t; what a match writes (PCRE2's match data, a copy
   of the text, the error count) is in an intent_rules_scratch_t, one per thread. Each match runs
   under a match and depth limit, so a pathological pattern or text cannot hang the worker; a
   match that hits a limit (or fails otherwise) counts as no match for that pattern. */
#ifndef INTENT_RULES_H
#define INTENT_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "conveyor/v1/conveyor.pb-c.h"
#include "cv_config.h"
#include "cv_envelope.h"
#include "cv_error.h"
#include "cv_log.h"

#define INTENT_UNKNOWN "unknown"  /* the fallback intent; no rule may use this name */
#define INTENT_RULE_SEPARATOR ':' /* between intent name and pattern number in a rule id */
#define INTENT_MATCH_LIMIT 10000  /* pcre2_set_match_limit, per start position */
#define INTENT_DEPTH_LIMIT 1000   /* pcre2_set_depth_limit (the interpreter's backtracking depth) */

typedef struct _intent_rules_t intent_rules_t;
typedef struct _intent_rules_scratch_t intent_rules_scratch_t;

/* What a classification found; plain data, released with intent_match_reset. */
typedef struct {
    const char *name;                    /* borrowed from the rules, or INTENT_UNKNOWN */
    float confidence;                    /* 1 for a rule, 0 for the fallback */
    Conveyor__V1__Intent__Method method; /* RULE or FALLBACK */
    char rule[CV_NAME_MAX_BYTES + 1];    /* e.g. "lost_or_stolen_card:1"; "" for the fallback */
    json_t *slots;                       /* owned: object of slot name -> matched text */
} intent_match_t;

/* Compiles the `intents` section of config; NULL with err naming file:line:key on a bad section
   (unknown key, bad intent name, a pattern that does not compile, with its offset). Nothing of
   config is kept, so config may be destroyed afterwards. log is borrowed, may be NULL. */
intent_rules_t *intent_rules_new (cv_config_t *config, cv_log_t *log, cv_error_t *err) CV_MUST_CHECK;
void intent_rules_destroy (intent_rules_t **self_p);

/* Number of intents (not counting the fallback). */
size_t intent_rules_count (const intent_rules_t *self);
/* The name of intent index, in file order, or NULL past the end. */
const char *intent_rules_name (const intent_rules_t *self, size_t index);
/* True when name is a configured intent or the fallback. */
bool intent_rules_known (const intent_rules_t *self, const char *name);

/* One thread's working memory for intent_rules_classify with rules (borrowed; it must outlive
   the scratch). NULL only when memory runs out. */
intent_rules_scratch_t *intent_rules_scratch_new (const intent_rules_t *rules);
void intent_rules_scratch_destroy (intent_rules_scratch_t **self_p);

/* Pattern runs through this scratch that ended in an error (the match or depth limit, most
   likely) instead of a match or a miss: each counted as no match. Worth a metric: a rising count
   means a pattern that backtracks too much for some texts. */
size_t intent_rules_scratch_errors (const intent_rules_scratch_t *self);

/* Classifies text (NUL-terminated) into match, which the caller resets, with scratch (made for
   these rules, used by one thread at a time). Returns 0, or -1 with err for text that is not
   valid UTF-8 or is longer than CV_TEXT_MAX_BYTES (the envelope rejects both before this is
   called; this is defence in depth), or when memory runs out. */
int intent_rules_classify (const intent_rules_t *self, intent_rules_scratch_t *scratch, const char *text,
                           intent_match_t *match, cv_error_t *err) CV_MUST_CHECK;

/* Releases match's slots and clears it; NULL-safe. */
void intent_match_reset (intent_match_t *match);

void intent_rules_test (bool verbose);

#endif
