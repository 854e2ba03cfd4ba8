/* The slot patterns: each kind of slot as customers write it, in the order they are read. */
#include "intent_slots_patterns.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cv_assert.h"

/*  --------------------------------------------------------------------------
    Pattern pieces. Digits are [0-9], never \d: with UCP, \d takes any script's digits, which
    intent_forms_number does not read. */

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
static const intent_slot_spec_t s_specs[] = {
    /* references: "transaction ID 12345", the bank's ids, other prefixed ids */
    {INTENT_SLOT_TRANSACTION, INTENT_SLOT_FORM_REF, "(?<!\\p{L})(?:transaction|txn)" REFERENCE_WORD REFERENCE},
    {INTENT_SLOT_TRANSFER, INTENT_SLOT_FORM_REF, "(?<!\\p{L})transfer" REFERENCE_WORD REFERENCE},
    {INTENT_SLOT_TRANSACTION, INTENT_SLOT_FORM_REF, NOT_IN_ID_BEFORE "(?<ref>{TRANSACTION_ID})" NOT_IN_ID_AFTER},
    {INTENT_SLOT_TRANSFER, INTENT_SLOT_FORM_REF, NOT_IN_ID_BEFORE "(?<ref>{TRANSFER_ID})" NOT_IN_ID_AFTER},
    {INTENT_SLOT_TRANSACTION, INTENT_SLOT_FORM_REF,
     NOT_IN_ID_BEFORE "(?<ref>(?:tx|txn|trx)[-_]?[0-9]{4,20})" NOT_IN_ID_AFTER},
    {INTENT_SLOT_TRANSFER, INTENT_SLOT_FORM_REF, NOT_IN_ID_BEFORE "(?<ref>(?:tr|trf)[-_]?[0-9]{4,20})" NOT_IN_ID_AFTER},

    /* not slots: IBANs, international phone numbers, things other than cards that end in four
       digits, the last four digits of something else, a card brand that starts with a demonym */
    {INTENT_SLOT_BLOCK, INTENT_SLOT_FORM_NONE,
     "(?-i:(?<![\\p{L}\\p{N}])[A-Z]{2}[0-9]{2}(?:\\h?[A-Z0-9]{4}){2,7}(?:\\h?[A-Z0-9]{1,4})?(?![\\p{L}\\p{N}]))"},
    {INTENT_SLOT_BLOCK, INTENT_SLOT_FORM_NONE, "(?<![\\p{N}+])\\+[0-9]{1,3}(?:[\\h.()-]{0,2}[0-9]){6,14}+(?![0-9])"},
    {INTENT_SLOT_BLOCK, INTENT_SLOT_FORM_NONE,
     "(?<!\\p{L})(?:account|iban|phone|mobile|telephone|sort\\s+code|year|month|week|period|quarter)"
     "(?:\\s+number)?\\s+(?:that\\s+|which\\s+)?end(?:ing|s|ed)(?:\\s+(?:in|with|on))?\\s*[:#-]?\\s*[0-9]{4}"
     "(?![0-9])"},
    {INTENT_SLOT_BLOCK, INTENT_SLOT_FORM_NONE,
     "(?<!\\p{L})last\\s+(?:four|4)(?:\\s+(?:digits|numbers))?\\s+(?:of|on|from)\\s+(?:my|the|your|this|that)"
     "\\s+(?:\\p{L}+\\s+)?(?:account|iban|phone|mobile)(?!\\p{L})"},
    {INTENT_SLOT_BLOCK, INTENT_SLOT_FORM_NONE, "(?<!\\p{L})american\\s+express(?!\\p{L})"},

    /* dates: words, "N units ago", weekdays, numbers, day and month name */
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_RELATIVE,
     "(?<!\\p{L})(?:(?:the\\s+)?day\\s+before\\s+yesterday(*:-2)|(?:the\\s+)?day\\s+after\\s+tomorrow(*:2)|"
     "yesterday(*:-1)|last\\s+night(*:-1)|today(*:0)|tonight(*:0)|this\\s+(?:morning|afternoon|evening)(*:0)|"
     "tomorrow(*:1))(?!\\p{L})"},
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_AGO,
     "(?<![\\p{L}\\p{N}])(?<n>[0-9]{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
     "(?:a\\s+)?couple(?:\\s+of)?)\\s+(?:days?(*:d)|weeks?(*:w)|fortnights?(*:f)|months?(*:m))\\s+ago(?!\\p{L})"},
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_WEEKDAY,
     "(?<!\\p{L})(?:(?<dir>last|this\\s+past|past|on|since|from|next|this\\s+coming|coming)\\s+)?"
     "(?:monday(*:1)|tuesday(*:2)|wednesday(*:3)|thursday(*:4)|friday(*:5)|saturday(*:6)|sunday(*:7))"
     "(?!\\p{L})"},
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_YMD,
     "(?<![0-9.,/-])(?<y>[0-9]{4})(?<sep>[-/.])(?<m>[0-9]{1,2})\\k<sep>(?<d>[0-9]{1,2})(?![0-9]|[-/.,][0-9])"},
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_YMD,
     "(?<![0-9.,/-])(?<d>[0-9]{1,2})(?<sep>[-/.])(?<m>[0-9]{1,2})\\k<sep>(?<y>[0-9]{4}|[0-9]{2})"
     "(?![0-9]|[-/.,][0-9])"},
    /* day/month without a year only after a preposition: "24/7 support" and "1/2" are no dates */
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_YMD,
     "(?<!\\p{L})(?:on|since|from|dated|until|till|by|before|after)\\s+(?:the\\s+)?(?<d>[0-9]{1,2})/(?<m>[0-9]{1,2})"
     "(?![0-9]|[-/.,][0-9])"},
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_NAMED, "(?<![\\p{L}\\p{N}.,/-])" DAY "(?:\\s+of\\s+|\\s+)" MONTH YEAR},
    {INTENT_SLOT_DATE, INTENT_SLOT_FORM_NAMED,
     "(?<!\\p{L})" MONTH "\\s*(?:the\\s+)?" DAY "(?![\\p{L}\\p{N}]|[.,][0-9])" NOT_AMOUNT YEAR},

    /* card digits, with card context */
    {INTENT_SLOT_CARD, INTENT_SLOT_FORM_CARD,
     "(?<!\\p{L})end(?:ing|s|ed)(?:\\s+(?:in|with|on))?\\s*[:#-]?\\s*" FOUR NOT_AMOUNT},
    {INTENT_SLOT_CARD, INTENT_SLOT_FORM_CARD,
     "(?<!\\p{L})last\\s+(?:four|4)(?:\\s+(?:digits|numbers|nos?\\.?))?(?:\\s+(?:of|on|from)\\s+(?:my|the|your|"
     "this|that)\\s+(?:\\p{L}+\\s+)?card(?:\\s+number)?)?(?:\\s+(?:are|is|were))?\\s*[:=-]?\\s*" FOUR},
    {INTENT_SLOT_CARD, INTENT_SLOT_FORM_CARD, "(?<![\\p{L}\\p{N}*•·#])(?:[*x•·#]{4}[\\s-]*){1,3}" FOUR},
    {INTENT_SLOT_CARD, INTENT_SLOT_FORM_CARD,
     "(?<!\\p{L})card(?:\\s+(?:number|no\\.?|nr\\.?))?\\s*(?:[:#]\\s*|\\s+)" FOUR NOT_AMOUNT},

    /* amounts: a currency before or after the number, whichever comes first; then money words */
    {INTENT_SLOT_AMOUNT, INTENT_SLOT_FORM_AMOUNT,
     "(?<![\\p{L}\\p{N}]){SIGN}\\h*(?<num>" NUM ")|(?<![\\p{L}\\p{N}.,'\\x{2019}])(?<num>" NUM ")\\h*{CUR}"},
    {INTENT_SLOT_AMOUNT, INTENT_SLOT_FORM_AMOUNT,
     "(?<!\\p{L})" MONEY FILLER "\\s+(?<num>" NUM ")(?:(?<=[.,][0-9]{2})|(?=" FOLLOW "))"},

    /* what is left: currencies, countries, demonyms before a place */
    {INTENT_SLOT_CURRENCY, INTENT_SLOT_FORM_CODE, "(?<![\\p{L}\\p{N}]){CUR}"},
    {INTENT_SLOT_COUNTRY, INTENT_SLOT_FORM_CODE, "(?<!\\p{L})(?:{COUNTRY})(?!\\p{L})"},
    {INTENT_SLOT_COUNTRY, INTENT_SLOT_FORM_CODE, "(?<!\\p{L})(?:{DEMONYM})(?=\\s+(?:\\p{L}+\\s+)?" PLACE ")"},
};

const intent_slot_spec_t *
intent_slots_patterns_specs (size_t *count)
{
    assert (count);
    *count = sizeof s_specs / sizeof s_specs[0];
    return s_specs;
}

/*  --------------------------------------------------------------------------
    Self-test: what each form reads is in its pattern */

/* The named groups a form's reading needs. */
static const char *const s_groups[][3] = {
    [INTENT_SLOT_FORM_NONE] = {NULL},
    [INTENT_SLOT_FORM_REF] = {"(?<ref>", NULL},
    [INTENT_SLOT_FORM_YMD] = {"(?<d>", "(?<m>", NULL},
    [INTENT_SLOT_FORM_NAMED] = {"(?<d>", NULL},
    [INTENT_SLOT_FORM_RELATIVE] = {NULL},
    [INTENT_SLOT_FORM_AGO] = {"(?<n>", NULL},
    [INTENT_SLOT_FORM_WEEKDAY] = {NULL},
    [INTENT_SLOT_FORM_CARD] = {"(?<last4>", NULL},
    [INTENT_SLOT_FORM_AMOUNT] = {"(?<num>", NULL},
    [INTENT_SLOT_FORM_CODE] = {NULL},
};

void
intent_slots_patterns_test (bool verbose)
{
    size_t count = 0;
    const intent_slot_spec_t *specs = intent_slots_patterns_specs (&count);
    assert (specs && count > 0);
    size_t blocks = 0;
    for (size_t i = 0; i < count; i++) {
        const intent_slot_spec_t *spec = &specs[i];
        assert (spec->source && *spec->source);
        for (size_t g = 0; s_groups[spec->form][g]; g++)
            cv_assert_that (strstr (spec->source, s_groups[spec->form][g]),
                            "intent_slots_patterns: pattern %zu lacks %s", i + 1, s_groups[spec->form][g]);
        /* a blocker gives nothing, and only a blocker reads nothing */
        assert ((spec->kind == INTENT_SLOT_BLOCK) == (spec->form == INTENT_SLOT_FORM_NONE));
        blocks += spec->kind == INTENT_SLOT_BLOCK;
    }
    /* references come first, then what only looks like a slot, then dates; countries are last */
    assert (specs[0].kind == INTENT_SLOT_TRANSACTION && blocks > 0);
    assert (specs[count - 1].kind == INTENT_SLOT_COUNTRY);
    if (verbose)
        printf ("intent_slots_patterns: %zu patterns, %zu blockers: ok\n", count, blocks);
}
