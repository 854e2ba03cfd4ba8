/* The slot lexicon: the agent file's currencies, countries, demonyms and bank ids, read, checked
   and given back as PCRE2 alternations. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "intent_lexicon.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "intent_slots_patterns.h"

/* Entries are compiled as the slot patterns they are spliced into are. */
#define COMPILE_OPTIONS INTENT_SLOTS_PATTERN_OPTIONS
#define NEVER "(*FAIL)"

/* One entry: a pattern and the code it stands for ("" for money that names no currency). */
typedef struct {
    char *pattern;
    char code[4];
    bool word; /* a currency word, which only follows its number */
} entry_t;

typedef struct {
    entry_t *items;
    size_t count;
} entries_t;

struct _intent_lexicon_t {
    entries_t currencies, countries, demonyms;
    char (*whole)[4]; /* currencies without a minor unit */
    size_t whole_count;
    char *ids[INTENT_LEXICON_ID_KINDS];
    char *texts[6]; /* what s_names stand for, made at load */
};

/* The names intent_lexicon_expand replaces, and what each stands for. */
static const char *const s_names[] = {"{CUR}", "{SIGN}", "{COUNTRY}", "{DEMONYM}", "{TRANSACTION_ID}", "{TRANSFER_ID}"};

static const char *const s_section_keys[] = {"currencies", "no_minor_unit", "countries", "demonyms", "ids", NULL};
static const char *const s_currency_keys[] = {"word", "sign", "code", NULL};
static const char *const s_country_keys[] = {"names", "code", NULL};
static const char *const s_id_keys[] = {"transaction_ref", "transfer_ref", NULL};

/* Appends text to *buffer (of *size bytes, grown); allocation failures are asserted, as
   everywhere at construction. */
static void
s_append_n (char **buffer, size_t *size, const char *text, size_t length)
{
    char *grown = cv_realloc (*buffer, *size + length + 1);
    memcpy (grown + *size, text, length);
    grown[*size + length] = '\0';
    *buffer = grown;
    *size += length;
}

static void
s_append (char **buffer, size_t *size, const char *text)
{
    s_append_n (buffer, size, text, strlen (text));
}

/* Checks that pattern (of node, at path) can be spliced into a slot pattern. */
static int
s_check_pattern (const cv_config_t *agent, cv_node_t *node, const char *path, const char *pattern, cv_error_t *err)
{
    if (!*pattern)
        return cv_config_fail (agent, node, path, err, "must not be empty");
    if (strstr (pattern, "\\Q") || strstr (pattern, "(*"))
        return cv_config_fail (agent, node, path, err,
                               "must not use \\Q or (*VERB): it is spliced into larger patterns");
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *compiled =
        pcre2_compile ((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, COMPILE_OPTIONS, &code, &offset, NULL);
    if (!compiled) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message (code, message, sizeof message);
        return cv_config_fail (agent, node, path, err, "does not compile: %s at offset %zu", (const char *) message,
                               (size_t) offset);
    }
    uint32_t groups = 0;
    pcre2_pattern_info (compiled, PCRE2_INFO_CAPTURECOUNT, &groups);
    pcre2_code_free (compiled);
    if (groups)
        return cv_config_fail (agent, node, path, err, "must not capture: write (?:...) for a group");
    return 0;
}

/* Checks that text (of node, at path) is length capital letters, and copies it into code. */
static int
s_check_code (const cv_config_t *agent, cv_node_t *node, const char *path, const char *text, size_t length,
              char code[4], cv_error_t *err)
{
    bool ok = strlen (text) == length;
    for (size_t i = 0; ok && i < length; i++)
        ok = text[i] >= 'A' && text[i] <= 'Z';
    if (!ok)
        return cv_config_fail (agent, node, path, err, "must be %zu capital letters (%s)", length,
                               length == 3 ? "ISO 4217" : "ISO 3166-1 alpha-2");
    memcpy (code, text, length + 1);
    return 0;
}

/* Reads one currency entry, {word|sign: PATTERN, code: XXX}, into entry. */
static int
s_read_currency (const cv_config_t *agent, cv_node_t *item, const char *path, entry_t *entry, cv_error_t *err)
{
    char full[256];
    const char *word = NULL, *sign = NULL, *code = NULL;
    if (cv_config_known_keys (agent, item, path, s_currency_keys, err)
        || cv_config_string (agent, item, "word", path, false, &word, err)
        || cv_config_string (agent, item, "sign", path, false, &sign, err)
        || cv_config_string (agent, item, "code", path, false, &code, err))
        return -1;
    if (!word == !sign)
        return cv_config_fail (agent, item, path, err, "needs one of `word` and `sign`");
    snprintf (full, sizeof full, "%s.%s", path, word ? "word" : "sign");
    if (s_check_pattern (agent, cv_node_get (item, word ? "word" : "sign"), full, word ? word : sign, err))
        return -1;
    snprintf (full, sizeof full, "%s.code", path);
    if (code && s_check_code (agent, cv_node_get (item, "code"), full, code, 3, entry->code, err))
        return -1;
    entry->word = word != NULL;
    entry->pattern = cv_strdup (word ? word : sign);
    return 0;
}

/* Reads one country or demonym entry, {names: PATTERN or [PATTERN, ...], code: XX}, into entry:
   the names joined into one alternation. */
static int
s_read_country (const cv_config_t *agent, cv_node_t *item, const char *path, entry_t *entry, cv_error_t *err)
{
    char full[256];
    const char **names = NULL, *code = NULL;
    size_t count = 0;
    if (cv_config_known_keys (agent, item, path, s_country_keys, err)
        || cv_config_strings (agent, item, "names", path, &names, &count, err))
        return -1;
    if (cv_config_string (agent, item, "code", path, true, &code, err)) {
        free (names);
        return -1;
    }
    snprintf (full, sizeof full, "%s.names", path);
    cv_node_t *node = cv_node_get (item, "names");
    int rc = count ? 0 : cv_config_fail (agent, node ? node : item, full, err, "is required");
    size_t length = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = s_check_pattern (agent, cv_node_is_list (node) ? cv_node_item (node, i) : node, full, names[i], err);
        length += strlen (names[i]) + 1;
    }
    snprintf (full, sizeof full, "%s.code", path);
    if (rc == 0)
        rc = s_check_code (agent, cv_node_get (item, "code"), full, code, 2, entry->code, err);
    if (rc == 0) {
        entry->pattern = cv_calloc (1, length);
        for (size_t i = 0; i < count; i++) {
            if (i)
                strcat (entry->pattern, "|");
            strcat (entry->pattern, names[i]);
        }
    }
    free (names);
    return rc;
}

/* Reads the list section[key] into entries. */
static int
s_read_list (const cv_config_t *agent, cv_node_t *section, const char *key, entries_t *entries, cv_error_t *err)
{
    char path[128];
    snprintf (path, sizeof path, "slots.%s", key);
    cv_node_t *list = cv_node_get (section, key);
    if (!list)
        return 0;
    if (!cv_node_is_list (list))
        return cv_config_fail (agent, list, path, err, "must be a list");
    entries->items = cv_calloc (cv_node_count (list) + 1, sizeof *entries->items);
    for (size_t i = 0; i < cv_node_count (list); i++) {
        char item_path[160];
        snprintf (item_path, sizeof item_path, "%s[%zu]", path, i + 1);
        entry_t *entry = &entries->items[entries->count];
        if (strcmp (key, "currencies") == 0 ? s_read_currency (agent, cv_node_item (list, i), item_path, entry, err)
                                            : s_read_country (agent, cv_node_item (list, i), item_path, entry, err))
            return -1;
        entries->count++;
    }
    return 0;
}

/* Reads no_minor_unit and ids. */
static int
s_read_rest (intent_lexicon_t *self, const cv_config_t *agent, cv_node_t *section, cv_error_t *err)
{
    const char **codes = NULL;
    size_t count = 0;
    if (cv_config_strings (agent, section, "no_minor_unit", "slots", &codes, &count, err))
        return -1;
    self->whole = cv_calloc (count + 1, sizeof *self->whole);
    cv_node_t *node = cv_node_get (section, "no_minor_unit");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = s_check_code (agent, cv_node_is_list (node) ? cv_node_item (node, i) : node, "slots.no_minor_unit",
                           codes[i], 3, self->whole[self->whole_count++], err);
    free (codes);
    cv_node_t *ids = cv_node_get (section, "ids");
    if (rc || !ids)
        return rc;
    if (cv_config_known_keys (agent, ids, "slots.ids", s_id_keys, err))
        return -1;
    for (size_t kind = 0; kind < INTENT_LEXICON_ID_KINDS; kind++) {
        const char *pattern = NULL;
        char path[64];
        snprintf (path, sizeof path, "slots.ids.%s", s_id_keys[kind]);
        if (cv_config_string (agent, ids, s_id_keys[kind], "slots.ids", false, &pattern, err)
            || (pattern && s_check_pattern (agent, cv_node_get (ids, s_id_keys[kind]), path, pattern, err)))
            return -1;
        if (pattern) {
            free (self->ids[kind]);
            self->ids[kind] = cv_strdup (pattern);
        }
    }
    return 0;
}

intent_lexicon_t *
intent_lexicon_new (cv_config_t *agent, cv_error_t *err)
{
    assert (agent);
    intent_lexicon_t *self = cv_calloc (1, sizeof *self);
    for (size_t kind = 0; kind < INTENT_LEXICON_ID_KINDS; kind++) {
        self->ids[kind] = cv_strdup (NEVER);
    }
    cv_node_t *section = cv_node_get (cv_config_root (agent), "slots");
    if (section
        && (cv_config_known_keys (agent, section, "slots", s_section_keys, err)
            || s_read_list (agent, section, "currencies", &self->currencies, err)
            || s_read_list (agent, section, "countries", &self->countries, err)
            || s_read_list (agent, section, "demonyms", &self->demonyms, err)
            || s_read_rest (self, agent, section, err))) {
        intent_lexicon_destroy (&self);
        return NULL;
    }
    /* A currency ends where a letter would go on: "EUR" is not the start of "Europe". */
    char *currencies = intent_lexicon_alternation (self, INTENT_LEXICON_CURRENCIES);
    char *signs = intent_lexicon_alternation (self, INTENT_LEXICON_SIGNS);
    size_t size = strlen (currencies);
    s_append (&currencies, &size, "(?!\\p{L})");
    size = strlen (signs);
    s_append (&signs, &size, "(?!\\p{L})");
    self->texts[0] = currencies;
    self->texts[1] = signs;
    self->texts[2] = intent_lexicon_alternation (self, INTENT_LEXICON_COUNTRIES);
    self->texts[3] = intent_lexicon_alternation (self, INTENT_LEXICON_DEMONYMS);
    self->texts[4] = cv_strdup (self->ids[INTENT_LEXICON_TRANSACTION_ID]);
    self->texts[5] = cv_strdup (self->ids[INTENT_LEXICON_TRANSFER_ID]);
    assert (self->texts[4] && self->texts[5]);
    return self;
}

static void
s_entries_free (entries_t *entries)
{
    for (size_t i = 0; i < entries->count; i++)
        free (entries->items[i].pattern);
    free (entries->items);
}

void
intent_lexicon_destroy (intent_lexicon_t **self_p)
{
    assert (self_p);
    intent_lexicon_t *self = *self_p;
    if (!self)
        return;
    s_entries_free (&self->currencies);
    s_entries_free (&self->countries);
    s_entries_free (&self->demonyms);
    free (self->whole);
    for (size_t kind = 0; kind < INTENT_LEXICON_ID_KINDS; kind++)
        free (self->ids[kind]);
    for (size_t i = 0; i < sizeof self->texts / sizeof self->texts[0]; i++)
        free (self->texts[i]);
    free (self);
    *self_p = NULL;
}

char *
intent_lexicon_alternation (const intent_lexicon_t *self, intent_lexicon_list_t list)
{
    assert (self);
    const entries_t *entries = list == INTENT_LEXICON_COUNTRIES  ? &self->countries
                               : list == INTENT_LEXICON_DEMONYMS ? &self->demonyms
                                                                 : &self->currencies;
    char *buffer = NULL;
    size_t size = 0;
    s_append (&buffer, &size, "(?:");
    bool first = true;
    for (size_t i = 0; i < entries->count; i++) {
        const entry_t *entry = &entries->items[i];
        if (entry->word && list == INTENT_LEXICON_SIGNS)
            continue;
        s_append (&buffer, &size, first ? "(?:" : "|(?:");
        s_append (&buffer, &size, entry->pattern);
        s_append (&buffer, &size, ")(*:");
        s_append (&buffer, &size, entry->code[0] ? entry->code : "-");
        s_append (&buffer, &size, ")");
        first = false;
    }
    s_append (&buffer, &size, first ? NEVER ")" : ")");
    return buffer;
}

char *
intent_lexicon_expand (const intent_lexicon_t *self, const char *source)
{
    assert (self && source);
    char *buffer = NULL;
    size_t size = 0;
    s_append (&buffer, &size, "");
    const size_t count = sizeof s_names / sizeof s_names[0];
    const char *at = source;
    while (*at) {
        const char *brace = strchr (at + (*at == '{'), '{');
        size_t which = count;
        for (size_t i = 0; i < count && which == count; i++)
            if (strncmp (at, s_names[i], strlen (s_names[i])) == 0)
                which = i;
        if (which < count) {
            s_append (&buffer, &size, self->texts[which]);
            at += strlen (s_names[which]);
        } else {
            size_t length = brace ? (size_t) (brace - at) : strlen (at);
            s_append_n (&buffer, &size, at, length);
            at += length;
        }
    }
    return buffer;
}

int
intent_lexicon_decimals (const intent_lexicon_t *self, const char *code)
{
    assert (self && code);
    for (size_t i = 0; i < self->whole_count; i++)
        if (strcmp (self->whole[i], code) == 0)
            return 0;
    return 2;
}

const char *
intent_lexicon_id (const intent_lexicon_t *self, intent_lexicon_id_t kind)
{
    assert (self && kind < INTENT_LEXICON_ID_KINDS);
    return self->ids[kind];
}

/*  --------------------------------------------------------------------------
    Self-test */

/* Asserts that the agent file text is refused with a message that contains expected. */
static void
s_expect_refused (const char *text, const char *expected)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, &err);
    assert (agent);
    intent_lexicon_t *lexicon = intent_lexicon_new (agent, &err);
    cv_assert_that (!(lexicon || !strstr (err.message, expected)), "intent_lexicon: %s\n  gave %s\n  expected %s", text,
                    lexicon ? "a lexicon" : err.message, expected);
    assert (err.code == CV_ERR_INVALID);
    cv_config_destroy (&agent);
}

void
intent_lexicon_test (bool verbose)
{
    cv_error_t err;
    /* entries in file order, words and signs, money that names no currency, a list of names */
    cv_config_t *agent =
        cv_config_parse ("agent.yaml",
                         "slots:\n"
                         "  currencies:\n"
                         "    - {word: '(?:US|U\\.S\\.)\\s*dollars?', code: USD}\n"
                         "    - {sign: '\\$|USD', code: USD}\n"
                         "    - {word: 'kroner|krone'}\n"
                         "    - {sign: '€|EUR', code: EUR}\n"
                         "    - {word: 'euros?', code: EUR}\n"
                         "    - {sign: '£', code: GBP}\n"
                         "  no_minor_unit: [JPY]\n"
                         "  countries:\n"
                         "    - {names: ['Northern\\s+Ireland', '(?:the\\s+)?United\\s+Kingdom'], code: GB}\n"
                         "  demonyms:\n"
                         "    - {names: British, code: GB}\n"
                         "    - {names: German, code: DE}\n"
                         "    - {names: Spanish, code: ES}\n"
                         "  ids:\n"
                         "    transaction_ref: 'tx(?:-[0-9]{1,9}){3}'\n"
                         "    transfer_ref: 'tr(?:-[0-9]{1,9}){2}'\n",
                         &err);
    assert (agent);
    intent_lexicon_t *lexicon = intent_lexicon_new (agent, &err);
    cv_assert_that (lexicon, "intent_lexicon: %s", err.message);
    char *currencies = intent_lexicon_alternation (lexicon, INTENT_LEXICON_CURRENCIES);
    char *signs = intent_lexicon_alternation (lexicon, INTENT_LEXICON_SIGNS);
    assert (strcmp (currencies, "(?:(?:(?:US|U\\.S\\.)\\s*dollars?)(*:USD)|(?:\\$|USD)(*:USD)|(?:kroner|krone)(*:-)|"
                                "(?:€|EUR)(*:EUR)|(?:euros?)(*:EUR)|(?:£)(*:GBP))")
            == 0);
    assert (strcmp (signs, "(?:(?:\\$|USD)(*:USD)|(?:€|EUR)(*:EUR)|(?:£)(*:GBP))") == 0);
    char *countries = intent_lexicon_alternation (lexicon, INTENT_LEXICON_COUNTRIES);
    assert (strcmp (countries, "(?:(?:Northern\\s+Ireland|(?:the\\s+)?United\\s+Kingdom)(*:GB))") == 0);
    char *demonyms = intent_lexicon_alternation (lexicon, INTENT_LEXICON_DEMONYMS);
    assert (strcmp (demonyms, "(?:(?:British)(*:GB)|(?:German)(*:DE)|(?:Spanish)(*:ES))") == 0);
    assert (intent_lexicon_decimals (lexicon, "JPY") == 0 && intent_lexicon_decimals (lexicon, "EUR") == 2);
    assert (strcmp (intent_lexicon_id (lexicon, INTENT_LEXICON_TRANSACTION_ID), "tx(?:-[0-9]{1,9}){3}") == 0);
    assert (strcmp (intent_lexicon_id (lexicon, INTENT_LEXICON_TRANSFER_ID), "tr(?:-[0-9]{1,9}){2}") == 0);
    /* the names replaced, a currency not followed by a letter; other braces stay */
    char *expanded = intent_lexicon_expand (lexicon, "a{1,2}{TRANSFER_ID}|{CUR}{NONE}{");
    char want[512];
    snprintf (want, sizeof want, "a{1,2}tr(?:-[0-9]{1,9}){2}|%s(?!\\p{L}){NONE}{", currencies);
    cv_assert_that (strcmp (expanded, want) == 0, "intent_lexicon: expanded to %s", expanded);
    free (expanded);
    if (verbose)
        printf ("  currencies %zu bytes, countries %zu, demonyms %zu\n", strlen (currencies), strlen (countries),
                strlen (demonyms));
    free (currencies);
    free (signs);
    free (countries);
    free (demonyms);
    intent_lexicon_destroy (&lexicon);
    intent_lexicon_destroy (&lexicon);
    cv_config_destroy (&agent);

    /* no section: nothing that matches */
    agent = cv_config_parse ("agent.yaml", "intents: {}\n", &err);
    assert (agent);
    lexicon = intent_lexicon_new (agent, &err);
    assert (lexicon);
    char *none = intent_lexicon_alternation (lexicon, INTENT_LEXICON_COUNTRIES);
    assert (strcmp (none, "(?:(*FAIL))") == 0);
    free (none);
    assert (strcmp (intent_lexicon_id (lexicon, INTENT_LEXICON_TRANSFER_ID), "(*FAIL)") == 0);
    assert (intent_lexicon_decimals (lexicon, "JPY") == 2);
    intent_lexicon_destroy (&lexicon);
    cv_config_destroy (&agent);

    /* a list of names is one alternation */
    agent = cv_config_parse ("agent.yaml", "slots:\n  countries:\n    - {names: [Spain, España], code: ES}\n", &err);
    assert (agent);
    lexicon = intent_lexicon_new (agent, &err);
    assert (lexicon);
    char *spain = intent_lexicon_alternation (lexicon, INTENT_LEXICON_COUNTRIES);
    assert (strcmp (spain, "(?:(?:Spain|España)(*:ES))") == 0);
    free (spain);
    intent_lexicon_destroy (&lexicon);
    cv_config_destroy (&agent);

    /* bad entries: refused with the file, the line and the key */
    s_expect_refused ("slots:\n  currencies:\n    - {word: euros?, code: EUR}\n    - {sign: '€', code: euro}\n",
                      "agent.yaml:4: slots.currencies[2].code: must be 3 capital letters (ISO 4217)");
    s_expect_refused ("slots:\n  currencies:\n    - {word: 'dollars?(', code: USD}\n",
                      "agent.yaml:3: slots.currencies[1].word: does not compile: missing closing parenthesis");
    s_expect_refused ("slots:\n  currencies:\n    - {word: '(euro)s?', code: EUR}\n",
                      "agent.yaml:3: slots.currencies[1].word: must not capture");
    s_expect_refused ("slots:\n  currencies:\n    - {word: 'euro)|(s', code: EUR}\n", "does not compile");
    s_expect_refused ("slots:\n  currencies:\n    - {word: 'euros(*:GBP)', code: EUR}\n", "must not use");
    s_expect_refused ("slots:\n  currencies:\n    - {word: euros, sign: '€', code: EUR}\n",
                      "agent.yaml:3: slots.currencies[1]: needs one of `word` and `sign`");
    s_expect_refused ("slots:\n  currencies:\n    - {words: euros, code: EUR}\n",
                      "agent.yaml:3: slots.currencies[1].words: unknown key");
    s_expect_refused ("slots:\n  currencies: euros\n", "agent.yaml:2: slots.currencies: must be a list");
    s_expect_refused ("slots:\n  countries:\n    - {names: Spain}\n", "slots.countries[1].code: is required");
    s_expect_refused ("slots:\n  countries:\n    - {names: Spain, code: ESP}\n",
                      "slots.countries[1].code: must be 2 capital letters (ISO 3166-1 alpha-2)");
    s_expect_refused ("slots:\n  demonyms:\n    - {names: [Spanish, ''], code: ES}\n",
                      "agent.yaml:3: slots.demonyms[1].names: must not be empty");
    s_expect_refused ("slots:\n  demonyms:\n    - {code: ES}\n", "slots.demonyms[1].names: is required");
    s_expect_refused ("slots:\n  no_minor_unit: [JPY, yen]\n", "agent.yaml:2: slots.no_minor_unit: must be 3");
    s_expect_refused ("slots:\n  ids:\n    card: 'c-[0-9]+'\n", "agent.yaml:3: slots.ids.card: unknown key");
    s_expect_refused ("slots:\n  ids:\n    transfer_ref: 'tr-[0-9'\n",
                      "agent.yaml:3: slots.ids.transfer_ref: does not compile");
    s_expect_refused ("slots:\n  currency: []\n", "agent.yaml:2: slots.currency: unknown key");
    s_expect_refused ("slots: [a]\n", "slots: must be a map");
    if (verbose)
        printf ("intent_lexicon: ok\n");
}
