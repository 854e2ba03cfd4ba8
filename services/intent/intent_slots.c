/* The intent worker's slots: the slot patterns (intent_slots_patterns) compiled with the agent's
   lexicon and run over a customer's text, and the code that puts each match in its normal form. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "intent_slots.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcre2.h>

#include "cv_alloc.h"
#include "cv_envelope.h"
#include "cv_utf8.h"
#include "intent_forms.h"
#include "intent_lexicon.h"
#include "intent_slots_patterns.h"

/* What a claimed span is overwritten with in our copy of the text: a control character no pattern
   matches and every boundary check treats as a non-word, of one byte so offsets stay put. */
#define CLAIMED '\x1a'

/* A compiled spec. */
typedef struct {
    intent_slot_kind_t kind;
    intent_slot_form_t form;
    pcre2_code *code;
} pattern_t;

/* A value found in the text, before it becomes JSON; plain data, so reading allocates nothing. */
typedef struct {
    intent_slot_kind_t kind;
    size_t offset;    /* where the mention starts: values are listed in text order */
    char text[48];    /* the normal form: "12.50", "2026-03-15", "tx-1-1-9", "ES" */
    char currency[4]; /* amounts only: ISO 4217, "" when the text names none */
} item_t;

/* Read-only once made: every thread reads the same compiled patterns. */
struct _intent_slots_t {
    intent_lexicon_t *lexicon;
    pcre2_code *ids[INTENT_LEXICON_ID_KINDS]; /* the bank's ids, whole: is a reference one? */
    pattern_t *patterns;                      /* in reading order */
    size_t pattern_count;
    uint32_t groups_max; /* capture groups of the pattern with most */
};

/* One thread's: what reading a text writes. */
struct _intent_slots_scratch_t {
    const intent_slots_t *slots;
    pcre2_match_data *match_data;
    pcre2_match_data *id_match; /* for the ids, so as to leave match_data as it is */
    pcre2_match_context *match_context;
    item_t *items; /* found in the current text */
    size_t item_count;
    size_t item_max;
    size_t errors; /* pattern runs that ended in an error */
    /* Our copy of the text: claimed spans are overwritten in it, and PCRE2's JIT may read up to
       15 bytes past the subject's end, which in a zeroed buffer of our own stays inside it. */
    char subject[CV_TEXT_MAX_BYTES + 64];
};

/* The keys of the result, in the order they are added. */
static const struct {
    intent_slot_kind_t kind;
    const char *one;
    const char *many;
} s_keys[] = {
    {INTENT_SLOT_AMOUNT, "amount", "amounts"},
    {INTENT_SLOT_DATE, "date", "dates"},
    {INTENT_SLOT_CARD, "card_last4", "card_last4s"},
    {INTENT_SLOT_TRANSACTION, "transaction_ref", "transaction_refs"},
    {INTENT_SLOT_TRANSFER, "transfer_ref", "transfer_refs"},
    {INTENT_SLOT_COUNTRY, "country", "countries"},
    {INTENT_SLOT_CURRENCY, "currency", "currencies"},
};

#define COUNT(array) (sizeof (array) / sizeof (array)[0])

/*  --------------------------------------------------------------------------
    Building the patterns */

/* Compiles the bank's id patterns whole, for s_bank_id. */
static int
s_compile_ids (intent_slots_t *self, cv_error_t *err)
{
    for (size_t kind = 0; kind < INTENT_LEXICON_ID_KINDS; kind++) {
        int code = 0;
        PCRE2_SIZE offset = 0;
        self->ids[kind] =
            pcre2_compile ((PCRE2_SPTR) intent_lexicon_id (self->lexicon, kind), PCRE2_ZERO_TERMINATED,
                           INTENT_SLOTS_PATTERN_OPTIONS | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &offset, NULL);
        if (!self->ids[kind])
            return cv_error_set (err, CV_ERR_INTERNAL, NULL, "bank id pattern %zu does not compile", kind + 1);
    }
    return 0;
}

intent_slots_t *
intent_slots_new (cv_config_t *agent, cv_error_t *err)
{
    assert (agent);
    intent_slots_t *self = cv_calloc (1, sizeof *self);
    size_t spec_count = 0;
    const intent_slot_spec_t *specs = intent_slots_patterns_specs (&spec_count);
    self->patterns = cv_calloc (spec_count, sizeof *self->patterns);
    self->lexicon = intent_lexicon_new (agent, err);
    if (!self->lexicon || s_compile_ids (self, err)) {
        intent_slots_destroy (&self);
        return NULL;
    }

    int rc = 0;
    for (size_t i = 0; i < spec_count && rc == 0; i++) {
        char *source = intent_lexicon_expand (self->lexicon, specs[i].source);
        int code = 0;
        PCRE2_SIZE offset = 0;
        pattern_t *pattern = &self->patterns[self->pattern_count];
        pattern->kind = specs[i].kind;
        pattern->form = specs[i].form;
        pattern->code = pcre2_compile ((PCRE2_SPTR) source, PCRE2_ZERO_TERMINATED, INTENT_SLOTS_PATTERN_OPTIONS, &code,
                                       &offset, NULL);
        if (pattern->code) {
            /* JIT is an optimisation only: the interpreter runs what it cannot compile */
            pcre2_jit_compile (pattern->code, PCRE2_JIT_COMPLETE);
            uint32_t groups = 0;
            pcre2_pattern_info (pattern->code, PCRE2_INFO_CAPTURECOUNT, &groups);
            if (groups > self->groups_max)
                self->groups_max = groups;
            self->pattern_count++;
        } else {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message (code, message, sizeof message);
            rc =
                cv_error_set (err, CV_ERR_INTERNAL, NULL, "slot pattern %zu does not compile: %s at offset %zu: %.80s",
                              i + 1, (const char *) message, (size_t) offset, source + (offset > 20 ? offset - 20 : 0));
        }
        free (source);
    }
    if (rc)
        intent_slots_destroy (&self);
    return self;
}

void
intent_slots_destroy (intent_slots_t **self_p)
{
    assert (self_p);
    intent_slots_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->pattern_count; i++)
        pcre2_code_free (self->patterns[i].code);
    free (self->patterns);
    for (size_t kind = 0; kind < INTENT_LEXICON_ID_KINDS; kind++)
        pcre2_code_free (self->ids[kind]);
    intent_lexicon_destroy (&self->lexicon);
    free (self);
    *self_p = NULL;
}

intent_slots_scratch_t *
intent_slots_scratch_new (const intent_slots_t *slots)
{
    assert (slots);
    intent_slots_scratch_t *self = cv_calloc (1, sizeof *self);
    self->slots = slots;
    self->match_data = pcre2_match_data_create (slots->groups_max + 1, NULL);
    self->id_match = pcre2_match_data_create (1, NULL);
    self->match_context = pcre2_match_context_create (NULL);
    if (!self->match_data || !self->id_match || !self->match_context) {
        intent_slots_scratch_destroy (&self);
        return NULL;
    }
    pcre2_set_match_limit (self->match_context, INTENT_SLOTS_MATCH_LIMIT);
    pcre2_set_depth_limit (self->match_context, INTENT_SLOTS_DEPTH_LIMIT);
    return self;
}

void
intent_slots_scratch_destroy (intent_slots_scratch_t **self_p)
{
    assert (self_p);
    intent_slots_scratch_t *self = *self_p;
    if (!self)
        return;
    pcre2_match_data_free (self->match_data);
    pcre2_match_data_free (self->id_match);
    pcre2_match_context_free (self->match_context);
    free (self->items);
    free (self);
    *self_p = NULL;
}

size_t
intent_slots_scratch_errors (const intent_slots_scratch_t *self)
{
    assert (self);
    return self->errors;
}

static void
s_set_date (item_t *item, long days)
{
    intent_forms_date (days, item->text, sizeof item->text);
}

/*  --------------------------------------------------------------------------
    Reading one match */

/* Copies named group name of the last match into buffer; its length, or -1 when the group did not
   take part or does not fit. */
static int
s_group (intent_slots_scratch_t *scratch, const char *name, char *buffer, size_t size)
{
    PCRE2_SIZE length = size;
    int rc = pcre2_substring_copy_byname (scratch->match_data, (PCRE2_SPTR) name, (PCRE2_UCHAR *) buffer, &length);
    return rc == 0 ? (int) length : -1;
}

/* The mark of the last match, "" when it passed none. */
static const char *
s_mark (intent_slots_scratch_t *scratch)
{
    PCRE2_SPTR mark = pcre2_get_mark (scratch->match_data);
    return mark ? (const char *) mark : "";
}

/* True for the bank's own ids, as the agent file writes them (slots.ids). */
static bool
s_bank_id (intent_slots_scratch_t *scratch, const char *ref)
{
    for (size_t kind = 0; kind < INTENT_LEXICON_ID_KINDS; kind++)
        if (pcre2_match (scratch->slots->ids[kind], (PCRE2_SPTR) ref, strlen (ref), 0, 0, scratch->id_match,
                         scratch->match_context)
            >= 0)
            return true;
    return false;
}

/* The bank's own ids in lower case, as the bank stores them; any other reference in upper case,
   as references are usually printed. ASCII only: the patterns take nothing else. */
static void
s_reference (intent_slots_scratch_t *scratch, const char *ref, char *out, size_t size)
{
    bool lower = s_bank_id (scratch, ref);
    snprintf (out, size, "%s", ref);
    for (char *c = out; *c; c++)
        if (lower && *c >= 'A' && *c <= 'Z')
            *c = (char) (*c - 'A' + 'a');
        else if (!lower && *c >= 'a' && *c <= 'z')
            *c = (char) (*c - 'a' + 'A');
}

/* A day and month, with the year read from group y ("2026", "26") or, when the text gives none,
   the most recent such date on or before today (intent_forms_day_month). */
static void
s_set_day_month (intent_slots_scratch_t *scratch, long today, int month, int day, item_t *item)
{
    char y[8];
    long days;
    if (intent_forms_day_month (today, s_group (scratch, "y", y, sizeof y) > 0 ? y : NULL, month, day, &days))
        s_set_date (item, days);
}

/* "15/03/2026", "2026-03-15", "on 15/03". */
static void
s_read_ymd (intent_slots_scratch_t *scratch, long today, item_t *item)
{
    char m[8], d[8];
    if (s_group (scratch, "m", m, sizeof m) > 0 && s_group (scratch, "d", d, sizeof d) > 0)
        s_set_day_month (scratch, today, atoi (m), atoi (d), item);
}

/* "15 March (2026)", "March 15th". */
static void
s_read_named (intent_slots_scratch_t *scratch, long today, item_t *item)
{
    char d[8];
    int month = atoi (s_mark (scratch));
    if (month >= 1 && month <= 12 && s_group (scratch, "d", d, sizeof d) > 0)
        s_set_day_month (scratch, today, month, atoi (d), item);
}

/* "3 days ago", "a month ago": months keep the day, clamped to the month's end. */
static void
s_read_ago (intent_slots_scratch_t *scratch, long today, item_t *item)
{
    char n[32];
    long days;
    if (s_group (scratch, "n", n, sizeof n) >= 0
        && intent_forms_ago (today, intent_forms_count (n), *s_mark (scratch), &days))
        s_set_date (item, days);
}

/* "last Tuesday", "on Tuesday": strictly before today; "next Tuesday": strictly after. */
static void
s_read_weekday (intent_slots_scratch_t *scratch, long today, item_t *item)
{
    char dir[32] = "";
    int weekday = atoi (s_mark (scratch));
    if (weekday < 1 || weekday > 7)
        return;
    s_group (scratch, "dir", dir, sizeof dir);
    bool ahead = strcasestr (dir, "next") || strcasestr (dir, "coming");
    s_set_date (item, intent_forms_weekday (today, weekday, ahead));
}

/* Reads the last match of pattern into item (item->text stays "" when the match gives no value).
   True when the match claims its span: everything but a number that is no number, so that what
   looks like a date but is none ("31/02/2026") does not turn into something else either. */
static bool
s_read (intent_slots_scratch_t *scratch, const pattern_t *pattern, long today, item_t *item)
{
    char text[48];
    switch (pattern->form) {
    case INTENT_SLOT_FORM_NONE:
        return true;
    case INTENT_SLOT_FORM_REF:
        if (s_group (scratch, "ref", text, sizeof text) > 0)
            s_reference (scratch, text, item->text, sizeof item->text);
        return true;
    case INTENT_SLOT_FORM_YMD:
        s_read_ymd (scratch, today, item);
        return true;
    case INTENT_SLOT_FORM_NAMED:
        s_read_named (scratch, today, item);
        return true;
    case INTENT_SLOT_FORM_RELATIVE:
        s_set_date (item, today + atoi (s_mark (scratch)));
        return true;
    case INTENT_SLOT_FORM_AGO:
        s_read_ago (scratch, today, item);
        return true;
    case INTENT_SLOT_FORM_WEEKDAY:
        s_read_weekday (scratch, today, item);
        return true;
    case INTENT_SLOT_FORM_CARD:
        if (s_group (scratch, "last4", text, sizeof text) == 4)
            memcpy (item->text, text, 5);
        return true;
    case INTENT_SLOT_FORM_AMOUNT: {
        const char *code = s_mark (scratch);
        if (strlen (code) != 3)
            code = ""; /* no currency said, or a money word that names none */
        int length = s_group (scratch, "num", text, sizeof text);
        int decimals = intent_lexicon_decimals (scratch->slots->lexicon, code);
        if (length < 0 || !intent_forms_number (text, (size_t) length, decimals, item->text, sizeof item->text)) {
            item->text[0] = '\0';
            return false;
        }
        snprintf (item->currency, sizeof item->currency, "%s", code);
        return true;
    }
    case INTENT_SLOT_FORM_CODE: {
        const char *code = s_mark (scratch);
        if (strcmp (code, "-") != 0)
            snprintf (item->text, sizeof item->text, "%s", code);
        return true;
    }
    }
    assert (false);
    return false;
}

/* Runs pattern over the text from start to end, keeping what it finds and claiming its spans. */
static void
s_scan (intent_slots_scratch_t *scratch, const pattern_t *pattern, size_t length, long today)
{
    PCRE2_SIZE offset = 0;
    while (offset < length) {
        /* the text was checked once; claiming keeps it valid UTF-8 (ASCII over whole characters) */
        int rc = pcre2_match (pattern->code, (PCRE2_SPTR) scratch->subject, length, offset, PCRE2_NO_UTF_CHECK,
                              scratch->match_data, scratch->match_context);
        if (rc == PCRE2_ERROR_NOMATCH)
            return;
        if (rc < 0) {
            scratch->errors++; /* a limit, most likely: this pattern stops, the others go on */
            return;
        }
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer (scratch->match_data);
        PCRE2_SIZE start = ovector[0], end = ovector[1];
        assert (end > start); /* every pattern takes at least one character */
        item_t item = {.kind = pattern->kind, .offset = start};
        if (s_read (scratch, pattern, today, &item)) {
            if (item.text[0]) {
                if (scratch->item_count == scratch->item_max) {
                    scratch->item_max = scratch->item_max ? scratch->item_max * 2 : 16;
                    item_t *grown = cv_realloc (scratch->items, scratch->item_max * sizeof *grown);
                    scratch->items = grown;
                }
                scratch->items[scratch->item_count++] = item;
            }
            memset (scratch->subject + start, CLAIMED, end - start);
        }
        offset = end;
    }
}

static int
s_compare (const void *a, const void *b)
{
    const item_t *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static json_t *
s_value (const item_t *item)
{
    if (item->kind != INTENT_SLOT_AMOUNT)
        return json_string (item->text);
    if (!item->currency[0])
        return json_pack ("{s:s}", "value", item->text);
    return json_pack ("{s:s, s:s}", "value", item->text, "currency", item->currency);
}

/* The items as the result object: per kind, distinct values in text order. NULL when memory runs
   out. */
static json_t *
s_collect (intent_slots_scratch_t *scratch)
{
    if (scratch->item_count) /* qsort takes no NULL array, even empty */
        qsort (scratch->items, scratch->item_count, sizeof *scratch->items, s_compare);
    json_t *slots = json_object ();
    bool ok = slots != NULL;
    for (size_t k = 0; k < COUNT (s_keys) && ok; k++) {
        json_t *values = json_array ();
        ok = values != NULL;
        for (size_t i = 0; i < scratch->item_count && ok; i++) {
            const item_t *item = &scratch->items[i];
            if (item->kind != s_keys[k].kind)
                continue;
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = scratch->items[j].kind == item->kind && strcmp (scratch->items[j].text, item->text) == 0
                       && strcmp (scratch->items[j].currency, item->currency) == 0;
            if (!seen)
                ok = json_array_append_new (values, s_value (item)) == 0;
        }
        if (ok && json_array_size (values) >= 1)
            ok = json_object_set (slots, s_keys[k].one, json_array_get (values, 0)) == 0;
        if (ok && json_array_size (values) >= 2)
            ok = json_object_set (slots, s_keys[k].many, values) == 0;
        json_decref (values);
    }
    if (!ok)
        json_decref (slots);
    return ok ? slots : NULL;
}

json_t *
intent_slots_extract (const intent_slots_t *self, intent_slots_scratch_t *scratch, const char *text, int year,
                      int month, int day, cv_error_t *err)
{
    assert (self && scratch && text);
    assert (scratch->slots == self);
    assert (year >= 1900 && year <= 9000 && intent_forms_valid (year, month, day));
    size_t length = strlen (text);
    if (length > CV_TEXT_MAX_BYTES) {
        cv_error_set (err, CV_ERR_INVALID, "text", "text is %zu bytes, over the limit of %d", length,
                      CV_TEXT_MAX_BYTES);
        return NULL;
    }
    if (!cv_utf8_valid (text, length)) {
        cv_error_set (err, CV_ERR_INVALID, "text", "text is not valid UTF-8");
        return NULL;
    }
    memcpy (scratch->subject, text, length + 1);
    scratch->item_count = 0;
    long today = intent_forms_days (year, month, day);
    for (size_t i = 0; i < self->pattern_count; i++)
        s_scan (scratch, &self->patterns[i], length, today);
    json_t *slots = s_collect (scratch);
    scratch->item_count = 0;
    if (!slots)
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
    return slots;
}

/*  --------------------------------------------------------------------------
    Self-test */

/* Asserts that text, read on year-month-day, gives exactly the slots of the JSON expected. */
static void
s_expect_on (const intent_slots_t *slots, intent_slots_scratch_t *scratch, int year, int month, int day,
             const char *text, const char *expected, bool verbose)
{
    cv_error_t err;
    json_error_t json_err;
    json_t *want = json_loads (expected, 0, &json_err);
    cv_assert_that (want, "intent_slots: bad expectation %s: %s", expected, json_err.text);
    json_t *got = intent_slots_extract (slots, scratch, text, year, month, day, &err);
    cv_assert_that (got, "intent_slots: '%s' failed: %s", text, err.message);
    char *dump = json_dumps (got, JSON_COMPACT | JSON_SORT_KEYS);
    cv_assert_that (json_equal (got, want), "intent_slots: '%s' (on %04d-%02d-%02d)\n  gave     %s\n  expected %s",
                    text, year, month, day, dump, expected);
    if (verbose)
        printf ("  %-60.60s -> %s\n", text, dump);
    free (dump);
    json_decref (got);
    json_decref (want);
}

/* The reference date of most cases: Wednesday 18 March 2026. */
#define TODAY 2026, 3, 18

size_t
intent_slots_test_cases (const intent_slots_t *self, const char *path, bool verbose)
{
    assert (self && path);
    intent_slots_scratch_t *scratch = intent_slots_scratch_new (self);
    assert (scratch);
    FILE *file = fopen (path, "r");
    cv_assert_that (file, "intent_slots: cannot read %s", path);
    char line[2048];
    size_t cases = 0;
    while (fgets (line, sizeof line, file)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        json_error_t json_err;
        json_t *item = json_loads (line, 0, &json_err);
        const char *text = NULL, *on = "2026-03-18";
        json_t *expected = NULL;
        if (!item
            || json_unpack_ex (item, &json_err, JSON_STRICT, "{s:s, s:o, s?:s}", "text", &text, "slots", &expected,
                               "on", &on)) {
            cv_assert_that (false, "intent_slots: %s: bad case %s: %s", path, line, json_err.text);
        }
        int year, month, day;
        assert (sscanf (on, "%d-%d-%d", &year, &month, &day) == 3);
        char *want = json_dumps (expected, JSON_COMPACT);
        s_expect_on (self, scratch, year, month, day, text, want, verbose);
        free (want);
        json_decref (item);
        cases++;
    }
    fclose (file);
    assert (intent_slots_scratch_errors (scratch) == 0);
    intent_slots_scratch_destroy (&scratch);
    return cases;
}

/* Slots made from the agent file text (with a slots section, or none), for one check. */
static intent_slots_t *
s_slots_of (const char *text, cv_config_t **agent_p, cv_error_t *err)
{
    *agent_p = cv_config_parse ("agent.yaml", text, err);
    assert (*agent_p);
    return intent_slots_new (*agent_p, err);
}

/* A slots section of the test's own: a few currencies (words, signs and codes, one that keeps
   its case, money that names none, one without a minor unit), countries (a list of names, names
   that keep their case, one after no South), demonyms and the bank's ids, enough for every case
   of tests/unit/intent/slots.jsonl. */
static const char s_agent[] = "slots:\n"
                              "  currencies:\n"
                              "    - {word: '(?:US|U\\.S\\.|American)\\s*dollars?', code: USD}\n"
                              "    - {word: 'Swiss\\s+francs?', code: CHF}\n"
                              "    - {word: 'pounds?\\s+sterling', code: GBP}\n"
                              "    - {word: 'Turkish\\s+liras?', code: TRY}\n"
                              "    - {sign: 'US\\$', code: USD}\n"
                              "    - {sign: 'CA\\$', code: CAD}\n"
                              "    - {word: 'euros?', code: EUR}\n"
                              "    - {sign: '€|EUR', code: EUR}\n"
                              "    - {word: 'dollars?|bucks?', code: USD}\n"
                              "    - {sign: '\\$|USD', code: USD}\n"
                              "    - {word: 'pounds?|quids?|sterling', code: GBP}\n"
                              "    - {sign: '£|GBP', code: GBP}\n"
                              "    - {word: 'francs?', code: CHF}\n"
                              "    - {sign: 'CHF', code: CHF}\n"
                              "    - {word: 'z[łl]oty', code: PLN}\n"
                              "    - {sign: 'zł', code: PLN}\n"
                              "    - {word: 'yen', code: JPY}\n"
                              "    - {sign: '¥|円', code: JPY}\n"
                              "    - {word: 'kronor', code: SEK}\n"
                              "    - {sign: '(?-i:TRY)', code: TRY}\n"
                              "    - {word: 'kroner'}\n"
                              "  no_minor_unit: [JPY]\n"
                              "  countries:\n"
                              "    - {names: ['Northern\\s+Ireland', '(?:the\\s+)?UK'], code: GB}\n"
                              "    - {names: ['United\\s+States', USA, 'U\\.S\\.', '(?<!south\\s)America'], code: US}\n"
                              "    - {names: '(?:the\\s+)?UAE', code: AE}\n"
                              "    - {names: Ireland, code: IE}\n"
                              "    - {names: Germany, code: DE}\n"
                              "    - {names: '(?:the\\s+)?Netherlands', code: NL}\n"
                              "    - {names: Spain, code: ES}\n"
                              "    - {names: Switzerland, code: CH}\n"
                              "    - {names: '(?-i:China)', code: CN}\n"
                              "    - {names: '(?-i:Turkey)', code: TR}\n"
                              "  demonyms:\n"
                              "    - {names: American, code: US}\n"
                              "    - {names: German, code: DE}\n"
                              "    - {names: Spanish, code: ES}\n"
                              "  ids:\n"
                              "    transaction_ref: 'tx(?:-[0-9]{1,9}){3}'\n"
                              "    transfer_ref: 'tr(?:-[0-9]{1,9}){2}'\n";

void
intent_slots_test (bool verbose)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", s_agent, &err);
    cv_assert_that (agent, "intent_slots: %s", err.message);
    intent_slots_t *slots = intent_slots_new (agent, &err);
    cv_assert_that (slots, "intent_slots: %s", err.message);
    intent_slots_scratch_t *scratch = intent_slots_scratch_new (slots);
    assert (scratch);

    /* every case of the file, read with the test's own lexicon (the demo agent's test reads them
       with the demo's) */
    size_t cases = intent_slots_test_cases (slots, CONVEYOR_SOURCE_DIR "/tests/unit/intent/slots.jsonl", verbose);
    assert (cases > 200);

    /* the longest text allowed, with slots only at its very end */
    char *text = cv_malloc (CV_TEXT_MAX_BYTES + 2);
    for (size_t i = 0; i < CV_TEXT_MAX_BYTES; i++)
        text[i] = "blah "[i % 5];
    const char *tail = " card ending 4417, €12.50 on 15/03/2026 in Spain";
    memcpy (text + CV_TEXT_MAX_BYTES - strlen (tail), tail, strlen (tail) + 1);
    assert (strlen (text) == CV_TEXT_MAX_BYTES);
    s_expect_on (slots, scratch, TODAY, text,
                 "{\"card_last4\": \"4417\", \"amount\": {\"value\": \"12.50\", \"currency\": \"EUR\"},"
                 " \"date\": \"2026-03-15\", \"country\": \"ES\"}",
                 false);
    /* one byte more is refused, not truncated */
    text[CV_TEXT_MAX_BYTES] = 'x';
    text[CV_TEXT_MAX_BYTES + 1] = '\0';
    assert (!intent_slots_extract (slots, scratch, text, TODAY, &err));
    assert (err.code == CV_ERR_INVALID && strstr (err.message, "over the limit"));

    /* texts made to make patterns work hard: each ends, with no error, and what they give is
       bounded (many amounts and dates are fine, a crash or a limit is not) */
    static const char *const units[] = {"1,",         "1.", "€1",    "1 EUR ",  "**** ",        "tx-1-",
                                        "1/1/",       "a ", "card ", "9",       "ending 1234 ", "\xe2\x80\x99",
                                        "last four ", "+4", "€€",    "March 1 "};
    for (size_t u = 0; u < COUNT (units); u++) {
        size_t size = strlen (units[u]), filled = 0;
        while (filled + size <= CV_TEXT_MAX_BYTES) {
            memcpy (text + filled, units[u], size);
            filled += size;
        }
        text[filled] = '\0';
        json_t *found = intent_slots_extract (slots, scratch, text, TODAY, &err);
        assert (found);
        if (verbose)
            printf ("  %zu x '%s': %zu keys\n", filled / size, units[u], json_object_size (found));
        json_decref (found);
    }
    free (text);
    assert (intent_slots_scratch_errors (scratch) == 0);

    /* invalid UTF-8 is refused, never read */
    static const char *const invalid[] = {"caf\xc3", "\xff€12", "card ending 4417 \xed\xa0\x80", "\xc0\xaf"};
    for (size_t i = 0; i < COUNT (invalid); i++) {
        assert (!intent_slots_extract (slots, scratch, invalid[i], TODAY, &err));
        assert (err.code == CV_ERR_INVALID && strstr (err.message, "UTF-8"));
    }

    /* an instance is reused from text to text; nothing leaks from one into the next */
    s_expect_on (slots, scratch, TODAY, "€5", "{\"amount\": {\"value\": \"5.00\", \"currency\": \"EUR\"}}", false);
    s_expect_on (slots, scratch, TODAY, "hello", "{}", false);

    /* the patterns are read-only: threads share them, each with a scratch of its own */
    intent_slots_scratch_t *other = intent_slots_scratch_new (slots);
    assert (other);
    s_expect_on (slots, other, TODAY, "card ending 4417", "{\"card_last4\": \"4417\"}", false);
    s_expect_on (slots, scratch, TODAY, "€5", "{\"amount\": {\"value\": \"5.00\", \"currency\": \"EUR\"}}", false);
    intent_slots_scratch_destroy (&other);

    /* an agent without a slots section: no currency, country or bank id, the rest as ever */
    cv_config_t *bare = NULL;
    intent_slots_t *plain = s_slots_of ("intents: {}\n", &bare, &err);
    assert (plain);
    other = intent_slots_scratch_new (plain);
    assert (other);
    s_expect_on (plain, other, TODAY, "charged 12.50 EUR in Spain, tx-1-1-9, card ending 4417 yesterday",
                 "{\"amount\": {\"value\": \"12.50\"}, \"card_last4\": \"4417\", \"date\": \"2026-03-17\"}", false);
    intent_slots_scratch_destroy (&other);
    intent_slots_destroy (&plain);
    cv_config_destroy (&bare);

    /* another bank's ids and words, from its agent file */
    plain = s_slots_of ("slots:\n  currencies:\n    - {sign: 'EUR', code: EUR}\n  no_minor_unit: [EUR]\n"
                        "  ids:\n    transaction_ref: 'pay-[0-9]{6}'\n",
                        &bare, &err);
    assert (plain);
    other = intent_slots_scratch_new (plain);
    assert (other);
    s_expect_on (plain, other, TODAY, "PAY-123456 took EUR 12",
                 "{\"transaction_ref\": \"pay-123456\", "
                 "\"amount\": {\"value\": \"12\", \"currency\": \"EUR\"}}",
                 false);
    s_expect_on (plain, other, TODAY, "transaction id tx-1-1-9", "{\"transaction_ref\": \"TX-1-1-9\"}", false);
    intent_slots_scratch_destroy (&other);
    intent_slots_destroy (&plain);
    cv_config_destroy (&bare);

    /* a bad entry is refused at start, with the file, the line and the key */
    plain = s_slots_of ("slots:\n  countries:\n    - {names: 'Spain(', code: ES}\n", &bare, &err);
    assert (!plain && err.code == CV_ERR_INVALID);
    assert (strstr (err.message, "agent.yaml:3: slots.countries[1].names: does not compile"));
    cv_config_destroy (&bare);

    intent_slots_scratch_destroy (&scratch);
    assert (!scratch);
    intent_slots_scratch_destroy (&scratch);
    intent_slots_destroy (&slots);
    assert (slots == NULL);
    intent_slots_destroy (&slots);
    cv_config_destroy (&agent);

    if (verbose)
        printf ("intent_slots: ok\n");
}
