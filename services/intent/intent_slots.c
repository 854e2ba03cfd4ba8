/* The intent worker's slots: PCRE2 patterns that find amounts, dates, cards, references,
   countries and currencies in a customer's text, and the code that puts each in its normal form. */
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

/* Caseless throughout; (?-i:...) marks the few spellings that must keep their case ("TRY", "US"). */
#define COMPILE_OPTIONS (PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_DUPNAMES | PCRE2_NEVER_BACKSLASH_C)

/* What a claimed span is overwritten with in our copy of the text: a control character no pattern
   matches and every boundary check treats as a non-word, of one byte so offsets stay put. */
#define CLAIMED '\x1a'

typedef enum {
    KIND_BLOCK, /* looks like a slot but is not one: claims its span, gives nothing */
    KIND_TRANSACTION,
    KIND_TRANSFER,
    KIND_DATE,
    KIND_CARD,
    KIND_AMOUNT,
    KIND_CURRENCY,
    KIND_COUNTRY,
} kind_t;

/* How a match becomes a value: which named groups and mark it reads. */
typedef enum {
    FORM_NONE,     /* nothing: a blocker */
    FORM_REF,      /* group ref */
    FORM_YMD,      /* groups d, m and optional y (numbers) */
    FORM_NAMED,    /* mark = month number, group d, optional group y */
    FORM_RELATIVE, /* mark = days from the reference date */
    FORM_AGO,      /* group n (a count), mark = unit: d, w (week), f (fortnight), m (month) */
    FORM_WEEKDAY,  /* mark = ISO weekday (1 Monday), optional group dir (next/coming: ahead) */
    FORM_CARD,     /* group last4 */
    FORM_AMOUNT,   /* group num, mark = ISO 4217 code or "-" or none */
    FORM_CODE,     /* mark = the value (ISO code) or "-" for a word that names none */
} form_t;

/* One way of writing a slot: {CUR} (any currency), {SIGN} (currency signs and codes), {COUNTRY},
   {DEMONYM}, {TRANSACTION_ID} and {TRANSFER_ID} in source stand for the agent file's lexicon
   (intent_lexicon_expand): alternations with a (*MARK) per entry naming its code, and the bank's
   ids. */
typedef struct {
    kind_t kind;
    form_t form;
    const char *source;
} spec_t;

/* A compiled spec. */
typedef struct {
    kind_t kind;
    form_t form;
    pcre2_code *code;
} pattern_t;

/* A value found in the text, before it becomes JSON; plain data, so reading allocates nothing. */
typedef struct {
    kind_t kind;
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

/*  --------------------------------------------------------------------------
    Pattern pieces. Digits are [0-9], never \d: with UCP, \d takes any script's digits, which the
    number code below does not read. */

/* A number as written: digit groups joined by single separators, read by intent_forms_number. Atomic, so a
   match never ends inside a number. */
#define NUM "(?>[0-9]+(?:[.,'\\x{2019}\\x{A0}\\x{202F}][0-9]+)*)"
/* Four digits that end there: no more digits, no decimals, no second group of a card number. */
#define FOUR "(?<last4>[0-9]{4})(?![0-9]|[.,][0-9])(?!\\s*[0-9])"
/* Not followed by a currency that makes the number before it an amount ("card 1500 euros"); a
   currency followed by a number is that number's ("March 15 €20"). */
#define NOT_AMOUNT "(?!\\s*{CUR}(?!\\s*[0-9]))"
#define MONTH                                                                                                          \
    "(?:january(*:1)|february(*:2)|march(*:3)|april(*:4)|may(*:5)|june(*:6)|july(*:7)|august(*:8)|"                    \
    "september(*:9)|october(*:10)|november(*:11)|december(*:12)|jan(*:1)|feb(*:2)|mar(*:3)|"                           \
    "apr(*:4)|jun(*:6)|jul(*:7)|aug(*:8)|sept(*:9)|sep(*:9)|oct(*:10)|nov(*:11)|dec(*:12))"                            \
    "(?!\\p{L})\\.?"
#define DAY "(?<d>[0-9]{1,2})(?:st|nd|rd|th)?"
#define YEAR "(?:,?\\s+(?<y>(?:19|20|21)[0-9]{2})(?![0-9])" NOT_AMOUNT ")?"
#define REFERENCE                                                                                                      \
    "(?<ref>(?-i:(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){2,39}))"                            \
    "(?![\\p{L}\\p{N}_-])"
#define REFERENCE_WORD                                                                                                 \
    "\\s+(?:(?:id|reference|ref|number|no|nr)(?!\\p{L})\\.?|#)(?:\\s+(?:is|was)(?!\\p{L}))?\\s*[:#]?\\s*"
#define NOT_IN_ID_BEFORE "(?<![\\p{L}\\p{N}_-])"
#define NOT_IN_ID_AFTER "(?![\\p{L}\\p{N}_-])"
/* Words after which a number is money even without a currency. */
#define MONEY                                                                                                          \
    "(?:charged|charge|paid|pay|debited|credited|refunded|refund|spent|sent|send|transferred|"                         \
    "transfer|withdrew|withdrawn|withdraw|withdrawal|costs|cost|costing|price|amount|sum|total|"                       \
    "balance|payment|top[- ]?up|topped\\s+up|deposited|deposit|fee|received)(?!\\p{L})"
/* Words that may stand between such a word and its number: "charged me only 40". */
#define FILLER                                                                                                         \
    "(?:\\s+(?:me|us|him|her|them|of|was|is|were|are|for|only|just|about|around|roughly|"                              \
    "approximately|nearly|almost|over|under|exactly|an?|the|extra|another|twice|again|out|back|"                       \
    "in|with|by|total)(?!\\p{L})){0,3}"
/* What may follow a whole number for it to be money: the end, punctuation, a claimed span (a
   date, a reference) or a small word — not a noun ("3 times", "10 minutes"). */
#define FOLLOW                                                                                                         \
    "\\s*(?:[.,;:!?)\\]\\x{1A}]|$)|\\s+(?:and|but|or|on|at|in|to|from|for|with|by|each|twice|"                         \
    "again|today|yesterday|last|this|that|which|so|because|instead|please|when|since|already|"                         \
    "too|as|not|only|into|via|back|off|out|yet|was|is|were|are|has|have|had|i|it|we|you|my|the|"                       \
    "an?|if|though|while)(?!\\p{L})"
/* Words after which a demonym names a country: "a German website". */
#define PLACE                                                                                                          \
    "(?:banks?|cards?|accounts?|merchants?|shops?|stores?|websites?|sites?|compan(?:y|ies)|"                           \
    "business(?:es)?|numbers?|phones?|sims?|iban|atms?|cash\\s+machines?|transfers?|payments?|"                        \
    "transactions?|retailers?|sellers?|vendors?|suppliers?|address|app|airlines?|hotels?|tax|"                         \
    "taxes|government|embassy|police|customs)(?!\\p{L})"

/* In reading order: a kind's spans are claimed before the next kind's patterns run. */
static const spec_t s_specs[] = {
    /* references: "transaction ID 12345", the bank's ids, other prefixed ids */
    {KIND_TRANSACTION, FORM_REF, "(?<!\\p{L})(?:transaction|txn)" REFERENCE_WORD REFERENCE},
    {KIND_TRANSFER, FORM_REF, "(?<!\\p{L})transfer" REFERENCE_WORD REFERENCE},
    {KIND_TRANSACTION, FORM_REF, NOT_IN_ID_BEFORE "(?<ref>{TRANSACTION_ID})" NOT_IN_ID_AFTER},
    {KIND_TRANSFER, FORM_REF, NOT_IN_ID_BEFORE "(?<ref>{TRANSFER_ID})" NOT_IN_ID_AFTER},
    {KIND_TRANSACTION, FORM_REF, NOT_IN_ID_BEFORE "(?<ref>(?:tx|txn|trx)[-_]?[0-9]{4,20})" NOT_IN_ID_AFTER},
    {KIND_TRANSFER, FORM_REF, NOT_IN_ID_BEFORE "(?<ref>(?:tr|trf)[-_]?[0-9]{4,20})" NOT_IN_ID_AFTER},

    /* not slots: IBANs, international phone numbers, things other than cards that end in four
       digits, the last four digits of something else, a card brand that starts with a demonym */
    {KIND_BLOCK, FORM_NONE,
     "(?-i:(?<![\\p{L}\\p{N}])[A-Z]{2}[0-9]{2}(?:\\h?[A-Z0-9]{4}){2,7}(?:\\h?[A-Z0-9]{1,4})?(?![\\p{L}\\p{N}]))"},
    {KIND_BLOCK, FORM_NONE, "(?<![\\p{N}+])\\+[0-9]{1,3}(?:[\\h.()-]{0,2}[0-9]){6,14}+(?![0-9])"},
    {KIND_BLOCK, FORM_NONE,
     "(?<!\\p{L})(?:account|iban|phone|mobile|telephone|sort\\s+code|year|month|week|period|quarter)"
     "(?:\\s+number)?\\s+(?:that\\s+|which\\s+)?end(?:ing|s|ed)(?:\\s+(?:in|with|on))?\\s*[:#-]?\\s*[0-9]{4}"
     "(?![0-9])"},
    {KIND_BLOCK, FORM_NONE,
     "(?<!\\p{L})last\\s+(?:four|4)(?:\\s+(?:digits|numbers))?\\s+(?:of|on|from)\\s+(?:my|the|your|this|that)"
     "\\s+(?:\\p{L}+\\s+)?(?:account|iban|phone|mobile)(?!\\p{L})"},
    {KIND_BLOCK, FORM_NONE, "(?<!\\p{L})american\\s+express(?!\\p{L})"},

    /* dates: words, "N units ago", weekdays, numbers, day and month name */
    {KIND_DATE, FORM_RELATIVE,
     "(?<!\\p{L})(?:(?:the\\s+)?day\\s+before\\s+yesterday(*:-2)|(?:the\\s+)?day\\s+after\\s+tomorrow(*:2)|"
     "yesterday(*:-1)|last\\s+night(*:-1)|today(*:0)|tonight(*:0)|this\\s+(?:morning|afternoon|evening)(*:0)|"
     "tomorrow(*:1))(?!\\p{L})"},
    {KIND_DATE, FORM_AGO,
     "(?<![\\p{L}\\p{N}])(?<n>[0-9]{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
     "(?:a\\s+)?couple(?:\\s+of)?)\\s+(?:days?(*:d)|weeks?(*:w)|fortnights?(*:f)|months?(*:m))\\s+ago(?!\\p{L})"},
    {KIND_DATE, FORM_WEEKDAY,
     "(?<!\\p{L})(?:(?<dir>last|this\\s+past|past|on|since|from|next|this\\s+coming|coming)\\s+)?"
     "(?:monday(*:1)|tuesday(*:2)|wednesday(*:3)|thursday(*:4)|friday(*:5)|saturday(*:6)|sunday(*:7))"
     "(?!\\p{L})"},
    {KIND_DATE, FORM_YMD,
     "(?<![0-9.,/-])(?<y>[0-9]{4})(?<sep>[-/.])(?<m>[0-9]{1,2})\\k<sep>(?<d>[0-9]{1,2})(?![0-9]|[-/.,][0-9])"},
    {KIND_DATE, FORM_YMD,
     "(?<![0-9.,/-])(?<d>[0-9]{1,2})(?<sep>[-/.])(?<m>[0-9]{1,2})\\k<sep>(?<y>[0-9]{4}|[0-9]{2})"
     "(?![0-9]|[-/.,][0-9])"},
    /* day/month without a year only after a preposition: "24/7 support" and "1/2" are no dates */
    {KIND_DATE, FORM_YMD,
     "(?<!\\p{L})(?:on|since|from|dated|until|till|by|before|after)\\s+(?:the\\s+)?(?<d>[0-9]{1,2})/(?<m>[0-9]{1,2})"
     "(?![0-9]|[-/.,][0-9])"},
    {KIND_DATE, FORM_NAMED, "(?<![\\p{L}\\p{N}.,/-])" DAY "(?:\\s+of\\s+|\\s+)" MONTH YEAR},
    {KIND_DATE, FORM_NAMED, "(?<!\\p{L})" MONTH "\\s*(?:the\\s+)?" DAY "(?![\\p{L}\\p{N}]|[.,][0-9])" NOT_AMOUNT YEAR},

    /* card digits, with card context */
    {KIND_CARD, FORM_CARD, "(?<!\\p{L})end(?:ing|s|ed)(?:\\s+(?:in|with|on))?\\s*[:#-]?\\s*" FOUR NOT_AMOUNT},
    {KIND_CARD, FORM_CARD,
     "(?<!\\p{L})last\\s+(?:four|4)(?:\\s+(?:digits|numbers|nos?\\.?))?(?:\\s+(?:of|on|from)\\s+(?:my|the|your|"
     "this|that)\\s+(?:\\p{L}+\\s+)?card(?:\\s+number)?)?(?:\\s+(?:are|is|were))?\\s*[:=-]?\\s*" FOUR},
    {KIND_CARD, FORM_CARD, "(?<![\\p{L}\\p{N}*•·#])(?:[*x•·#]{4}[\\s-]*){1,3}" FOUR},
    {KIND_CARD, FORM_CARD, "(?<!\\p{L})card(?:\\s+(?:number|no\\.?|nr\\.?))?\\s*(?:[:#]\\s*|\\s+)" FOUR NOT_AMOUNT},

    /* amounts: a currency before or after the number, whichever comes first; then money words */
    {KIND_AMOUNT, FORM_AMOUNT,
     "(?<![\\p{L}\\p{N}]){SIGN}\\h*(?<num>" NUM ")|(?<![\\p{L}\\p{N}.,'\\x{2019}])(?<num>" NUM ")\\h*{CUR}"},
    {KIND_AMOUNT, FORM_AMOUNT, "(?<!\\p{L})" MONEY FILLER "\\s+(?<num>" NUM ")(?:(?<=[.,][0-9]{2})|(?=" FOLLOW "))"},

    /* what is left: currencies, countries, demonyms before a place */
    {KIND_CURRENCY, FORM_CODE, "(?<![\\p{L}\\p{N}]){CUR}"},
    {KIND_COUNTRY, FORM_CODE, "(?<!\\p{L})(?:{COUNTRY})(?!\\p{L})"},
    {KIND_COUNTRY, FORM_CODE, "(?<!\\p{L})(?:{DEMONYM})(?=\\s+(?:\\p{L}+\\s+)?" PLACE ")"},
};

/* The keys of the result, in the order they are added. */
static const struct {
    kind_t kind;
    const char *one;
    const char *many;
} s_keys[] = {
    {KIND_AMOUNT, "amount", "amounts"},
    {KIND_DATE, "date", "dates"},
    {KIND_CARD, "card_last4", "card_last4s"},
    {KIND_TRANSACTION, "transaction_ref", "transaction_refs"},
    {KIND_TRANSFER, "transfer_ref", "transfer_refs"},
    {KIND_COUNTRY, "country", "countries"},
    {KIND_CURRENCY, "currency", "currencies"},
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
        self->ids[kind] = pcre2_compile ((PCRE2_SPTR) intent_lexicon_id (self->lexicon, kind), PCRE2_ZERO_TERMINATED,
                                         COMPILE_OPTIONS | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &offset, NULL);
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
    self->patterns = cv_calloc (COUNT (s_specs), sizeof *self->patterns);
    self->lexicon = intent_lexicon_new (agent, err);
    if (!self->lexicon || s_compile_ids (self, err)) {
        intent_slots_destroy (&self);
        return NULL;
    }

    int rc = 0;
    for (size_t i = 0; i < COUNT (s_specs) && rc == 0; i++) {
        char *source = intent_lexicon_expand (self->lexicon, s_specs[i].source);
        int code = 0;
        PCRE2_SIZE offset = 0;
        pattern_t *pattern = &self->patterns[self->pattern_count];
        pattern->kind = s_specs[i].kind;
        pattern->form = s_specs[i].form;
        pattern->code =
            pcre2_compile ((PCRE2_SPTR) source, PCRE2_ZERO_TERMINATED, COMPILE_OPTIONS, &code, &offset, NULL);
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
    case FORM_NONE:
        return true;
    case FORM_REF:
        if (s_group (scratch, "ref", text, sizeof text) > 0)
            s_reference (scratch, text, item->text, sizeof item->text);
        return true;
    case FORM_YMD:
        s_read_ymd (scratch, today, item);
        return true;
    case FORM_NAMED:
        s_read_named (scratch, today, item);
        return true;
    case FORM_RELATIVE:
        s_set_date (item, today + atoi (s_mark (scratch)));
        return true;
    case FORM_AGO:
        s_read_ago (scratch, today, item);
        return true;
    case FORM_WEEKDAY:
        s_read_weekday (scratch, today, item);
        return true;
    case FORM_CARD:
        if (s_group (scratch, "last4", text, sizeof text) == 4)
            memcpy (item->text, text, 5);
        return true;
    case FORM_AMOUNT: {
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
    case FORM_CODE: {
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
    if (item->kind != KIND_AMOUNT)
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

/* Runs the cases of the file at path (see tests/unit/intent/slots.jsonl); their number. */
static size_t
s_expect_cases (const intent_slots_t *slots, intent_slots_scratch_t *scratch, const char *path, bool verbose)
{
    FILE *file = fopen (path, "r");
    assert (file);
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
        s_expect_on (slots, scratch, year, month, day, text, want, verbose);
        free (want);
        json_decref (item);
        cases++;
    }
    fclose (file);
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

/* The reference date of most cases: Wednesday 18 March 2026. */
#define TODAY 2026, 3, 18

void
intent_slots_test (bool verbose)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    assert (agent);
    intent_slots_t *slots = intent_slots_new (agent, &err);
    cv_assert_that (slots, "intent_slots: %s", err.message);
    intent_slots_scratch_t *scratch = intent_slots_scratch_new (slots);
    assert (scratch);

    /* every case of the file, read with the demo agent's lexicon */
    size_t cases = s_expect_cases (slots, scratch, CONVEYOR_SOURCE_DIR "/tests/unit/intent/slots.jsonl", verbose);
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
