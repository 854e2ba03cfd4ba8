/* The intent worker's hand-written rules: PCRE2 patterns from the agent file, first match wins. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "intent_rules.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "cv_alloc.h"
#include "cv_utf8.h"

#define COMPILE_OPTIONS (PCRE2_UTF | PCRE2_UCP | PCRE2_DUPNAMES | PCRE2_NEVER_BACKSLASH_C)

/* A named group of a pattern: a slot. */
typedef struct {
    char *name;
    uint32_t group;
} slot_t;

/* One compiled pattern of one intent. */
typedef struct {
    size_t intent; /* index into names */
    size_t number; /* the pattern's place in its intent's list, from 1 */
    pcre2_code *code;
    slot_t *slots;
    size_t slot_count;
} rule_t;

/* Read-only once made: every thread reads the same compiled patterns. */
struct _intent_rules_t {
    char **names; /* intent names, file order */
    size_t name_count;
    rule_t *rules; /* every pattern, file order */
    size_t rule_count;
    uint32_t groups_max; /* capture groups of the pattern with most */
    cv_log_t *log;       /* borrowed, may be NULL */
};

/* One thread's: what a match writes. */
struct _intent_rules_scratch_t {
    const intent_rules_t *rules;
    pcre2_match_data *match_data; /* sized for the pattern with most groups */
    pcre2_match_context *match_context;
    size_t errors; /* pattern runs that ended in an error */
    /* The text being classified, copied: PCRE2's JIT reads the subject in 16-byte chunks up to 15
       bytes past its end (never across a page). In a buffer of our own, zeroed at creation, those
       reads stay inside it, so nothing depends on what follows the caller's string and memcheck
       has nothing to report. */
    char subject[CV_TEXT_MAX_BYTES + 64];
};

/* A match context with this file's limits; NULL only when memory runs out. */
static pcre2_match_context *
s_match_context_new (void)
{
    pcre2_match_context *context = pcre2_match_context_create (NULL);
    if (context) {
        pcre2_set_match_limit (context, INTENT_MATCH_LIMIT);
        pcre2_set_depth_limit (context, INTENT_DEPTH_LIMIT);
    }
    return context;
}

static const char *const s_intent_keys[] = {"patterns", "tools", NULL};

/* node, or fallback when node has no line of its own (cv_node_line gives none for an empty map
   or list), so that every error names a line. */
static cv_node_t *
s_at (cv_node_t *node, cv_node_t *fallback)
{
    return cv_node_line (node) ? node : fallback;
}

static size_t
s_digits (size_t number)
{
    size_t digits = 1;
    while (number >= 10) {
        number /= 10;
        digits++;
    }
    return digits;
}

/* Reads the named groups of rule's pattern into rule->slots. */
static void
s_read_slots (rule_t *rule)
{
    uint32_t count = 0, entry_size = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info (rule->code, PCRE2_INFO_NAMECOUNT, &count);
    if (count == 0)
        return;
    pcre2_pattern_info (rule->code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
    pcre2_pattern_info (rule->code, PCRE2_INFO_NAMETABLE, &table);
    rule->slots = cv_calloc (count, sizeof *rule->slots);
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR entry = table + (size_t) i * entry_size;
        rule->slots[i].group = ((uint32_t) entry[0] << 8) | entry[1];
        rule->slots[i].name = cv_strdup ((const char *) entry + 2);
    }
    rule->slot_count = count;
}

/* Compiles one pattern into rule; fails naming the pattern's line and the offset of the problem. */
static int
s_compile (intent_rules_t *self, const cv_config_t *config, cv_node_t *node, const char *path, const char *pattern,
           rule_t *rule, cv_error_t *err)
{
    int code = 0;
    PCRE2_SIZE offset = 0;
    rule->code = pcre2_compile ((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, COMPILE_OPTIONS, &code, &offset, NULL);
    if (!rule->code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message (code, message, sizeof message);
        return cv_config_fail (config, node, path, err, "pattern %zu does not compile: %s at offset %zu", rule->number,
                               (const char *) message, (size_t) offset);
    }
    /* JIT is an optimisation only: when it is not available the interpreter runs the pattern. */
    int jit = pcre2_jit_compile (rule->code, PCRE2_JIT_COMPLETE);
    if (jit != 0 && self->log)
        cv_log_debug (self->log, "%s: pattern %zu runs without JIT (error %d)", path, rule->number, jit);
    s_read_slots (rule);

    /* A pattern that matches empty text matches every message: surely not what was meant. */
    static const char empty[64]; /* room for what the JIT reads past the end */
    pcre2_match_data *probe = pcre2_match_data_create_from_pattern (rule->code, NULL);
    pcre2_match_context *context = s_match_context_new ();
    assert (probe && context);
    int rc = pcre2_match (rule->code, (PCRE2_SPTR) empty, 0, 0, 0, probe, context);
    pcre2_match_data_free (probe);
    pcre2_match_context_free (context);
    if (rc >= 0)
        return cv_config_fail (config, node, path, err,
                               "pattern %zu matches empty text, so it would match every message", rule->number);
    return 0;
}

/* Reads one intent: its name, its keys and its patterns. */
static int
s_add_intent (intent_rules_t *self, cv_config_t *config, const char *name, cv_node_t *body, cv_node_t *key_node,
              cv_error_t *err)
{
    char path[CV_NAME_MAX_BYTES + 64];
    snprintf (path, sizeof path, "intents.%s", name ? name : "?");
    if (!cv_name_valid (name))
        return cv_config_fail (config, key_node, path, err, "intent names are made of " CV_NAME_CHARS);
    if (strcmp (name, INTENT_UNKNOWN) == 0)
        return cv_config_fail (config, key_node, path, err, "%s is the fallback intent and cannot have rules",
                               INTENT_UNKNOWN);
    for (size_t i = 0; i < self->name_count; i++)
        if (strcmp (self->names[i], name) == 0)
            return cv_config_fail (config, key_node, path, err, "intent is defined twice");
    if (cv_config_known_keys (config, body, path, s_intent_keys, err))
        return -1;
    const char **texts = NULL;
    size_t count = 0;
    if (cv_config_strings (config, body, "patterns", path, &texts, &count, err))
        return -1;
    cv_node_t *patterns = cv_node_get (body, "patterns");
    snprintf (path, sizeof path, "intents.%s.patterns", name);
    /* No patterns: the intent is the classifier's to find, and its entry gives it tools. */
    if (patterns && count == 0) {
        free (texts);
        return cv_config_fail (config, s_at (patterns, body), path, err,
                               "must list at least one pattern, or be left out");
    }
    /* The rule id "<name>:<count>" must fit a name on the wire. */
    if (strlen (name) + 1 + s_digits (count) > CV_NAME_MAX_BYTES) {
        free (texts);
        return cv_config_fail (config, key_node, path, err, "intent name too long for its rule ids (%d bytes at most)",
                               CV_NAME_MAX_BYTES);
    }

    self->names[self->name_count] = cv_strdup (name);
    size_t intent = self->name_count++;
    if (count == 0) {
        free (texts);
        return 0;
    }
    rule_t *grown = cv_realloc (self->rules, (self->rule_count + count) * sizeof *grown);
    self->rules = grown;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        rule_t *rule = &self->rules[self->rule_count++];
        memset (rule, 0, sizeof *rule);
        rule->intent = intent;
        rule->number = i + 1;
        cv_node_t *node = cv_node_is_list (patterns) ? cv_node_item (patterns, i) : patterns;
        if (!*texts[i])
            rc = cv_config_fail (config, node, path, err, "pattern %zu is empty", i + 1);
        else
            rc = s_compile (self, config, node, path, texts[i], rule, err);
    }
    free (texts);
    return rc;
}

intent_rules_t *
intent_rules_new (cv_config_t *config, cv_log_t *log, cv_error_t *err)
{
    assert (config);
    intent_rules_t *self = cv_calloc (1, sizeof *self);
    self->log = log;

    cv_node_t *root = cv_config_root (config);
    cv_node_t *intents = cv_node_get (root, "intents");
    int rc = 0;
    if (!intents)
        rc = cv_config_fail (config, root, "intents", err, "is required");
    else if (!cv_node_is_map (intents))
        rc = cv_config_fail (config, intents, "intents", err, "must be a map of intent name to its rules");
    else if (cv_node_count (intents) == 0)
        rc = cv_config_fail (config, s_at (intents, root), "intents", err, "must name at least one intent");
    else {
        size_t count = cv_node_count (intents);
        self->names = cv_calloc (count, sizeof *self->names);
        for (size_t i = 0; i < count && rc == 0; i++) {
            cv_node_t *body = cv_node_value (intents, i);
            /* Errors about the name point at its body's line: the name's own, or the one after. */
            rc = s_add_intent (self, config, cv_node_key (intents, i), body, s_at (body, intents), err);
        }
    }
    for (size_t i = 0; rc == 0 && i < self->rule_count; i++) {
        uint32_t groups = 0;
        pcre2_pattern_info (self->rules[i].code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups > self->groups_max)
            self->groups_max = groups;
    }
    if (rc)
        intent_rules_destroy (&self);
    return self;
}

void
intent_rules_destroy (intent_rules_t **self_p)
{
    assert (self_p);
    intent_rules_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->rule_count; i++) {
        rule_t *rule = &self->rules[i];
        for (size_t j = 0; j < rule->slot_count; j++)
            free (rule->slots[j].name);
        free (rule->slots);
        pcre2_code_free (rule->code);
    }
    free (self->rules);
    for (size_t i = 0; i < self->name_count; i++)
        free (self->names[i]);
    free (self->names);
    free (self);
    *self_p = NULL;
}

intent_rules_scratch_t *
intent_rules_scratch_new (const intent_rules_t *rules)
{
    assert (rules);
    intent_rules_scratch_t *self = cv_calloc (1, sizeof *self);
    self->rules = rules;
    self->match_data = pcre2_match_data_create (rules->groups_max + 1, NULL);
    self->match_context = s_match_context_new ();
    if (!self->match_data || !self->match_context)
        intent_rules_scratch_destroy (&self);
    return self;
}

void
intent_rules_scratch_destroy (intent_rules_scratch_t **self_p)
{
    assert (self_p);
    intent_rules_scratch_t *self = *self_p;
    if (!self)
        return;
    pcre2_match_data_free (self->match_data);
    pcre2_match_context_free (self->match_context);
    free (self);
    *self_p = NULL;
}

size_t
intent_rules_scratch_errors (const intent_rules_scratch_t *self)
{
    assert (self);
    return self->errors;
}

size_t
intent_rules_count (const intent_rules_t *self)
{
    assert (self);
    return self->name_count;
}

const char *
intent_rules_name (const intent_rules_t *self, size_t index)
{
    assert (self);
    return index < self->name_count ? self->names[index] : NULL;
}

bool
intent_rules_known (const intent_rules_t *self, const char *name)
{
    assert (self);
    if (!name)
        return false;
    if (strcmp (name, INTENT_UNKNOWN) == 0)
        return true;
    for (size_t i = 0; i < self->name_count; i++)
        if (strcmp (self->names[i], name) == 0)
            return true;
    return false;
}

/* The named groups that took part in the last match, as an object of name -> text. With duplicate
   names (PCRE2_DUPNAMES) the first group of that name that matched wins. */
static json_t *
s_slots (const intent_rules_scratch_t *scratch, const rule_t *rule, const char *text, int groups)
{
    json_t *slots = json_object ();
    if (!slots)
        return NULL;
    PCRE2_SIZE *ovector = pcre2_get_ovector_pointer (scratch->match_data);
    for (size_t i = 0; i < rule->slot_count; i++) {
        const slot_t *slot = &rule->slots[i];
        if (slot->group >= (uint32_t) groups || ovector[2 * slot->group] == PCRE2_UNSET
            || json_object_get (slots, slot->name))
            continue;
        PCRE2_SIZE start = ovector[2 * slot->group], end = ovector[2 * slot->group + 1];
        json_t *value = json_stringn (text + start, end - start);
        if (value)
            json_object_set_new (slots, slot->name, value);
    }
    return slots;
}

int
intent_rules_classify (const intent_rules_t *self, intent_rules_scratch_t *scratch, const char *text,
                       intent_match_t *match, cv_error_t *err)
{
    assert (self && scratch && text && match);
    assert (scratch->rules == self);
    memset (match, 0, sizeof *match);
    match->name = INTENT_UNKNOWN;
    match->method = CONVEYOR__V1__INTENT__METHOD__FALLBACK;
    size_t length = strlen (text);
    if (length > CV_TEXT_MAX_BYTES)
        return cv_error_set (err, CV_ERR_INVALID, "text", "text is %zu bytes, over the limit of %d", length,
                             CV_TEXT_MAX_BYTES);
    if (!cv_utf8_valid (text, length))
        return cv_error_set (err, CV_ERR_INVALID, "text", "text is not valid UTF-8");

    memcpy (scratch->subject, text, length + 1);
    for (size_t i = 0; i < self->rule_count; i++) {
        const rule_t *rule = &self->rules[i];
        /* The text was checked once above; no need to check it again for every pattern. */
        int rc = pcre2_match (rule->code, (PCRE2_SPTR) scratch->subject, length, 0, PCRE2_NO_UTF_CHECK,
                              scratch->match_data, scratch->match_context);
        if (rc == PCRE2_ERROR_NOMATCH)
            continue;
        if (rc < 0) {
            scratch->errors++;
            if (self->log && cv_log_verbose (self->log)) {
                PCRE2_UCHAR message[256];
                pcre2_get_error_message (rc, message, sizeof message);
                cv_log_debug (self->log, "intents.%s pattern %zu skipped: %s", self->names[rule->intent], rule->number,
                              (const char *) message);
            }
            continue;
        }
        json_t *slots = s_slots (scratch, rule, scratch->subject, rc == 0 ? 1 : rc);
        if (!slots)
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        match->name = self->names[rule->intent];
        match->confidence = 1.0f;
        match->method = CONVEYOR__V1__INTENT__METHOD__RULE;
        snprintf (match->rule, sizeof match->rule, "%s%c%zu", match->name, INTENT_RULE_SEPARATOR, rule->number);
        match->slots = slots;
        return 0;
    }
    match->slots = json_object ();
    if (!match->slots)
        return cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    return 0;
}

void
intent_match_reset (intent_match_t *match)
{
    if (!match)
        return;
    json_decref (match->slots);
    memset (match, 0, sizeof *match);
}

/*  --------------------------------------------------------------------------
    Self-test */

#ifndef CONVEYOR_SOURCE_DIR
#error "CONVEYOR_SOURCE_DIR must name the source tree (for the demo agent file)"
#endif

static intent_rules_t *
s_parse (const char *text, cv_error_t *err)
{
    cv_config_t *config = cv_config_parse ("test.yaml", text, err);
    assert (config);
    intent_rules_t *rules = intent_rules_new (config, NULL, err);
    cv_config_destroy (&config);
    return rules;
}

/* Asserts text classifies as intent (INTENT_UNKNOWN for the fallback). */
static void
s_expect (const intent_rules_t *rules, intent_rules_scratch_t *scratch, const char *text, const char *intent,
          bool verbose)
{
    intent_match_t match;
    cv_error_t err;
    assert (intent_rules_classify (rules, scratch, text, &match, &err) == 0);
    cv_assert_that (strcmp (match.name, intent) == 0, "intent_rules: '%s' is %s (%s), expected %s", text, match.name,
                    match.rule, intent);
    if (verbose)
        printf ("  %-28s %-22s <- %s\n", match.name, match.rule, text);
    bool is_rule = strcmp (intent, INTENT_UNKNOWN) != 0;
    assert (match.method == (is_rule ? CONVEYOR__V1__INTENT__METHOD__RULE : CONVEYOR__V1__INTENT__METHOD__FALLBACK));
    assert (match.confidence == (is_rule ? 1.0f : 0.0f));
    assert (is_rule ? strncmp (match.rule, intent, strlen (intent)) == 0 : match.rule[0] == '\0');
    assert (json_is_object (match.slots));
    intent_match_reset (&match);
}

/* Asserts text classifies as intent with slot name = value. */
static void
s_expect_slot (const intent_rules_t *rules, intent_rules_scratch_t *scratch, const char *text, const char *intent,
               const char *name, const char *value)
{
    intent_match_t match;
    cv_error_t err;
    assert (intent_rules_classify (rules, scratch, text, &match, &err) == 0);
    assert (strcmp (match.name, intent) == 0);
    json_t *slot = json_object_get (match.slots, name);
    if (value)
        assert (slot && strcmp (json_string_value (slot), value) == 0);
    else
        assert (!slot);
    intent_match_reset (&match);
}

void
intent_rules_test (bool verbose)
{
    cv_error_t err;
    /* A broad rule set of its own: the demo agent file keeps only a few must-win rules. */
    cv_config_t *config = cv_config_load (CONVEYOR_SOURCE_DIR "/tests/unit/intent/rules.yaml", &err);
    assert (config);
    intent_rules_t *rules = intent_rules_new (config, NULL, &err);
    cv_assert_that (rules, "intent_rules: %s", err.message);
    cv_config_destroy (&config); /* the rules keep nothing of the document */
    intent_rules_scratch_t *scratch = intent_rules_scratch_new (rules);
    assert (scratch);

    /* the eight demo intents, in file order */
    static const char *const demo[] = {"transaction_charged_twice",
                                       "request_refund",
                                       "lost_or_stolen_card",
                                       "card_payment_not_recognised",
                                       "top_up_failed",
                                       "pending_transfer",
                                       "exchange_rate",
                                       "card_arrival"};
    assert (intent_rules_count (rules) == 8);
    for (size_t i = 0; i < 8; i++) {
        assert (strcmp (intent_rules_name (rules, i), demo[i]) == 0);
        assert (intent_rules_known (rules, demo[i]));
    }
    assert (!intent_rules_name (rules, 8));
    assert (intent_rules_known (rules, INTENT_UNKNOWN));
    assert (!intent_rules_known (rules, "freeze_card"));

    /* several realistic phrasings of each */
    static const struct {
        const char *intent, *text;
    } phrasings[] = {
        {"transaction_charged_twice", "I was charged twice for the same coffee"},
        {"transaction_charged_twice", "Why have I been billed two times for one order?"},
        {"transaction_charged_twice", "There's a double charge on my statement from Tesco"},
        {"transaction_charged_twice", "I see a duplicate payment for my Netflix subscription"},
        {"transaction_charged_twice", "the same amount was taken twice from my account"},
        {"request_refund", "Can I get a refund for this purchase?"},
        {"request_refund", "I want my money back, the item never arrived"},
        {"request_refund", "How do I request a refund from a merchant?"},
        {"request_refund", "Please reimburse me for the broken headphones"},
        {"lost_or_stolen_card", "I lost my card"},
        {"lost_or_stolen_card", "My card was stolen last night"},
        {"lost_or_stolen_card", "I can't find my debit card anywhere"},
        {"lost_or_stolen_card", "someone stole my wallet with my card in it"},
        {"lost_or_stolen_card", "HELP I LOST MY CARD"},
        {"lost_or_stolen_card", "I think I misplaced my card at the restaurant"},
        {"card_payment_not_recognised", "I don't recognise this payment"},
        {"card_payment_not_recognised", "There's a payment I don't recognise on my account"},
        {"card_payment_not_recognised", "I didn't make this transaction"},
        {"card_payment_not_recognised", "what is this strange charge from AMZN MKTP?"},
        {"card_payment_not_recognised", "There is a suspicious transaction on my card"},
        {"top_up_failed", "My top-up failed"},
        {"top_up_failed", "Why was my top up declined?"},
        {"top_up_failed", "I couldn't top up my account with Apple Pay"},
        {"top_up_failed", "the topup didn't work again"},
        {"top_up_failed", "I am unable to top up"},
        {"pending_transfer", "My transfer is still pending"},
        {"pending_transfer", "Why is my transfer taking so long?"},
        {"pending_transfer", "the transfer to my landlord has not gone through yet"},
        {"pending_transfer", "I have a pending transfer since Monday"},
        {"exchange_rate", "What's the exchange rate for USD?"},
        {"exchange_rate", "what exchange rate do you use?"},
        {"exchange_rate", "What is the rate for euros to dollars?"},
        {"exchange_rate", "conversion rate to pounds please"},
        {"card_arrival", "When will my card arrive?"},
        {"card_arrival", "I'm still waiting for my new card"},
        {"card_arrival", "How can I track my card?"},
        {"card_arrival", "my card hasn't been delivered yet"},
        {"card_arrival", "Has my new card come in the post?"},
    };
    for (size_t i = 0; i < sizeof phrasings / sizeof phrasings[0]; i++)
        s_expect (rules, scratch, phrasings[i].text, phrasings[i].intent, verbose);

    /* the rule id names the intent and the pattern, from 1 */
    intent_match_t match;
    assert (intent_rules_classify (rules, scratch, "My card was stolen", &match, &err) == 0);
    assert (strcmp (match.rule, "lost_or_stolen_card:2") == 0);
    assert (json_object_size (match.slots) == 0);
    intent_match_reset (&match);
    intent_match_reset (&match); /* idempotent */
    intent_match_reset (NULL);

    /* slots: the named groups that matched, and only those */
    s_expect_slot (rules, scratch, "I lost my card ending 4417", "lost_or_stolen_card", "card_last4", "4417");
    s_expect_slot (rules, scratch, "my card was stolen, the one ending in 0042", "lost_or_stolen_card", "card_last4",
                   "0042");
    s_expect_slot (rules, scratch, "I lost my card", "lost_or_stolen_card", "card_last4", NULL);
    s_expect_slot (rules, scratch, "exchange rate for USD", "exchange_rate", "currency", "USD");
    s_expect_slot (rules, scratch, "what's the conversion rate to GBP", "exchange_rate", "currency", "GBP");
    /* codes are upper case */
    s_expect_slot (rules, scratch, "exchange rate for usd", "exchange_rate", "currency", NULL);

    /* no rule: the fallback */
    s_expect (rules, scratch, "what is your favourite colour", INTENT_UNKNOWN, verbose);
    s_expect (rules, scratch, "hello", INTENT_UNKNOWN, verbose);
    s_expect (rules, scratch, "", INTENT_UNKNOWN, verbose);

    /* the longest text allowed, with and without an intent at its very end */
    char *text = cv_malloc (CV_TEXT_MAX_BYTES + 2);
    for (size_t i = 0; i < CV_TEXT_MAX_BYTES; i++)
        text[i] = "blah "[i % 5];
    text[CV_TEXT_MAX_BYTES] = '\0';
    s_expect (rules, scratch, text, INTENT_UNKNOWN, false);
    const char *tail = " I lost my card";
    memcpy (text + CV_TEXT_MAX_BYTES - strlen (tail), tail, strlen (tail));
    s_expect (rules, scratch, text, "lost_or_stolen_card", false);
    /* one byte more is refused, not truncated */
    text[CV_TEXT_MAX_BYTES] = 'x';
    text[CV_TEXT_MAX_BYTES + 1] = '\0';
    assert (intent_rules_classify (rules, scratch, text, &match, &err) == -1);
    assert (err.code == CV_ERR_INVALID && strstr (err.message, "over the limit"));
    assert (strcmp (match.name, INTENT_UNKNOWN) == 0 && !match.slots);
    free (text);

    /* emoji and other scripts: a code point is one `.` */
    s_expect (rules, scratch, "My card \xf0\x9f\x92\xb3 was stolen!! \xf0\x9f\x98\xa2", "lost_or_stolen_card", verbose);
    s_expect_slot (rules, scratch, "\xf0\x9f\x98\xb1 I lost my card \xf0\x9f\x98\xa2 ending 4417",
                   "lost_or_stolen_card", "card_last4", "4417");
    s_expect (rules, scratch, "Ich habe meine Karte verloren \xf0\x9f\x92\xb3", INTENT_UNKNOWN, verbose);
    s_expect (rules, scratch, "\xe6\x88\x91\xe7\x9a\x84\xe5\x8d\xa1\xe4\xb8\xa2\xe4\xba\x86", INTENT_UNKNOWN, verbose);
    s_expect (rules, scratch, "Caf\xc3\xa9 charged me twice \xe2\x80\x94 twice!", "transaction_charged_twice", verbose);
    /* invalid UTF-8 is refused (the envelope refuses it first) */
    assert (intent_rules_classify (rules, scratch, "caf\xc3", &match, &err) == -1);
    assert (err.code == CV_ERR_INVALID && strstr (err.message, "UTF-8"));
    assert (intent_rules_scratch_errors (scratch) == 0); /* the demo patterns never come near the limits */

    /* rules are read-only: threads share them, each with a scratch of its own */
    intent_rules_scratch_t *other = intent_rules_scratch_new (rules);
    assert (other);
    s_expect_slot (rules, other, "I lost my card ending 4417", "lost_or_stolen_card", "card_last4", "4417");
    s_expect (rules, scratch, "hello", INTENT_UNKNOWN, false);
    intent_rules_scratch_destroy (&other);
    intent_rules_scratch_destroy (&scratch);
    assert (!scratch);
    intent_rules_scratch_destroy (&scratch);
    intent_rules_destroy (&rules);
    assert (rules == NULL);
    intent_rules_destroy (&rules);

    /* config errors name the file, the line and the key */
    rules = s_parse ("intents:\n"
                     "  lost_card:\n"
                     "    patterns:\n"
                     "      - 'lost'\n"
                     "      - '(unclosed'\n",
                     &err);
    assert (!rules);
    if (verbose)
        printf ("  %s\n", err.message);
    assert (strstr (err.message, "test.yaml:5: intents.lost_card.patterns: pattern 2 does not compile"));
    assert (strstr (err.message, "at offset 9"));
    rules = s_parse ("intents:\n  lost_card:\n    paterns: ['lost']\n", &err);
    assert (!rules && strstr (err.message, "test.yaml:3: intents.lost_card.paterns: unknown key"));
    /* an intent with tools and no patterns is the classifier's to find: no rule matches it */
    rules = s_parse ("intents:\n  lost_card:\n    tools: [a]\n", &err);
    assert (rules && intent_rules_count (rules) == 1 && intent_rules_known (rules, "lost_card"));
    scratch = intent_rules_scratch_new (rules);
    s_expect (rules, scratch, "I lost my card", INTENT_UNKNOWN, verbose);
    intent_rules_scratch_destroy (&scratch);
    intent_rules_destroy (&rules);
    rules = s_parse ("intents:\n  lost_card:\n    patterns: []\n", &err);
    assert (!rules && strstr (err.message, "test.yaml:3: intents.lost_card.patterns: must list at least one pattern"));
    rules = s_parse ("intents:\n  lost_card:\n    patterns: [{a: b}]\n", &err);
    assert (!rules && strstr (err.message, "must be a string"));
    rules = s_parse ("intents:\n  lost card:\n    patterns: ['lost']\n", &err);
    assert (!rules && strstr (err.message, "intents.lost card: intent names are made of [A-Za-z0-9_.:-]"));
    rules = s_parse ("intents:\n  unknown:\n    patterns: ['lost']\n", &err);
    assert (!rules && strstr (err.message, "fallback intent"));
    rules = s_parse ("intents:\n  lost_card:\n    patterns: ['(?i)(lost)?']\n", &err);
    assert (!rules && strstr (err.message, "test.yaml:3: intents.lost_card.patterns: pattern 1 matches empty text"));
    rules = s_parse ("intents:\n  lost_card: ['lost']\n", &err);
    assert (!rules && strstr (err.message, "test.yaml:2: intents.lost_card: must be a map"));
    rules = s_parse ("intents: [lost_card]\n", &err);
    assert (!rules && strstr (err.message, "test.yaml:1: intents: must be a map"));
    rules = s_parse ("intents: {}\n", &err);
    assert (!rules && strstr (err.message, "test.yaml:1: intents: must name at least one intent"));
    rules = s_parse ("agent: x\n", &err);
    assert (!rules && strstr (err.message, "intents: is required"));

    /* a single pattern may be written as a string; first intent in file order wins */
    rules = s_parse ("intents:\n"
                     "  first:\n"
                     "    patterns: '(?i)card'\n"
                     "  second:\n"
                     "    patterns: ['(?i)lost (?<what>\\w+)', '(?<n>\\d+)|(?<n>x)']\n",
                     &err);
    assert (rules);
    scratch = intent_rules_scratch_new (rules);
    s_expect (rules, scratch, "I lost my card", "first", false);
    s_expect_slot (rules, scratch, "I lost my wallet", "second", "what", "my");
    assert (intent_rules_classify (rules, scratch, "box", &match, &err) == 0);
    assert (strcmp (match.rule, "second:2") == 0); /* duplicate names: the group that matched */
    assert (strcmp (json_string_value (json_object_get (match.slots, "n")), "x") == 0);
    intent_match_reset (&match);
    intent_rules_scratch_destroy (&scratch);
    intent_rules_destroy (&rules);

    /* a pathological pattern cannot hang the worker: the match limit ends it, as no match */
    rules = s_parse ("intents:\n"
                     "  slow:\n"
                     "    patterns: ['(a+)+$', '(?:(?:a|aa)+)+c']\n"
                     "  fine:\n"
                     "    patterns: ['a']\n",
                     &err);
    assert (rules);
    scratch = intent_rules_scratch_new (rules);
    text = cv_malloc (CV_TEXT_MAX_BYTES + 1);
    memset (text, 'a', CV_TEXT_MAX_BYTES - 1);
    text[CV_TEXT_MAX_BYTES - 1] = 'b';
    text[CV_TEXT_MAX_BYTES] = '\0';
    s_expect (rules, scratch, text, "fine", false);
    assert (intent_rules_scratch_errors (scratch) >= 1);
    free (text);
    /* and it is our limit that ends it: this text needs ~2^18 steps, under PCRE2's default limit of
       ten million (no match) but over ours (an error, counted, taken as no match) */
    size_t errors = intent_rules_scratch_errors (scratch);
    s_expect (rules, scratch, "aaaaaaaaaaaaaaaaaab", "fine", false);
    assert (intent_rules_scratch_errors (scratch) > errors);
    intent_rules_scratch_destroy (&scratch);
    intent_rules_destroy (&rules);

    if (verbose)
        printf ("intent_rules: ok\n");
}
