/* The responder's output guardrails: whitespace, length and internal-data checks on a reply. */
#include "responder_guard.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_utf8.h"

/* Conveyor's identifiers: a request id is "r-" and 21 hex digits, a trace id 32. */
#define REQUEST_ID_HEX_DIGITS 21
#define TRACE_ID_HEX_DIGITS 32

/* Text that never belongs in a reply to a customer. Matched case-sensitively on the collapsed
   text, so "with the exception of" passes and "NullPointerException" does not. */
typedef struct {
    const char *marker;
    const char *what;
    const char *rule; /* the rule's name, for the counts */
} marker_t;

static const marker_t s_markers[] = {
    {"{{", "a template placeholder", "placeholder"},
    {"}}", "a template placeholder", "placeholder"},
    {"Traceback", "a stack trace", "stack_trace"},
    {"Stack trace", "a stack trace", "stack_trace"},
    {"stack trace", "a stack trace", "stack_trace"},
    {"Exception", "an exception", "exception"},
    {"Segmentation fault", "a crash report", "crash_report"},
    {"core dumped", "a crash report", "crash_report"},
    {"SQLSTATE", "a database error", "database_error"},
    {"ERROR:", "an error message", "error_message"},
    {"FATAL:", "an error message", "error_message"},
    {"PANIC:", "an error message", "error_message"},
    {"postgresql://", "a connection URL", "connection_url"},
    {"postgres://", "a connection URL", "connection_url"},
    {"message_id", "an envelope field", "envelope_field"},
    {"request_id", "an envelope field", "envelope_field"},
    {"trace_id", "an envelope field", "envelope_field"},
    {"span_id", "an envelope field", "envelope_field"},
    {"deadline_ms", "an envelope field", "envelope_field"},
};

/* ASCII whitespace and every other control character count as space. */
static bool
s_is_space (unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

/* Punctuation that closes a clause: a space before it, followed by a space or the end, is padding. */
static bool
s_is_closing (const unsigned char *c)
{
    return *c && strchr (".,;:!?", *c) && (c[1] == '\0' || s_is_space (c[1]));
}

/* Copies text with each run of space collapsed to one ' ', none at either end and none before
   closing punctuation: database values are often blank-padded (to_char's Month, char(n)), which
   would otherwise show as "arrives by Sunday 18 January ." */
static char *
s_collapse (const char *text)
{
    char *out = cv_malloc (strlen (text) + 1);
    size_t used = 0;
    bool pending_space = false;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        if (s_is_space (*c)) {
            pending_space = used > 0;
            continue;
        }
        if (pending_space && !s_is_closing (c))
            out[used++] = ' ';
        pending_space = false;
        out[used++] = (char) *c;
    }
    out[used] = '\0';
    return out;
}

/* Shortens text in place to at most max_bytes without splitting a UTF-8 sequence. */
static void
s_cut (char *text, size_t max_bytes)
{
    size_t size = strlen (text);
    if (size <= max_bytes)
        return;
    size_t cut = max_bytes;
    /* text[cut] is the first byte dropped; while it continues a sequence, that sequence started
       before the cut and must go too. */
    while (cut > 0 && ((unsigned char) text[cut] & 0xc0) == 0x80)
        cut--;
    while (cut > 0 && text[cut - 1] == ' ')
        cut--;
    text[cut] = '\0';
}

/* The most digits a reply may show in one number: a card's last four are fine, a whole card or
   account number is not. Digits in one number may be grouped by single spaces or dashes
   ("4417 1234 5678 9012"); any other character ends it. */
#define GUARD_MAX_NUMBER_DIGITS 11

static bool
s_is_digit (unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
s_is_hex (unsigned char c)
{
    return s_is_digit (c) || (c >= 'a' && c <= 'f');
}

/* True when text shows a number of more than GUARD_MAX_NUMBER_DIGITS digits. */
static bool
s_long_number (const char *text)
{
    size_t digits = 0;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        if (s_is_digit (*c))
            digits++;
        else if (!((*c == ' ' || *c == '-') && digits > 0 && s_is_digit (c[1])))
            digits = 0;
        if (digits > GUARD_MAX_NUMBER_DIGITS)
            return true;
    }
    return false;
}

/* True when text shows one of conveyor's own identifiers: a request id ("r-" and 21 hex digits)
   or a trace id (32 hex digits), each standing alone. */
static bool
s_internal_id (const char *text)
{
    const unsigned char *start = (const unsigned char *) text;
    for (const unsigned char *c = start; *c; c++) {
        if (c > start && (isalnum (c[-1]) || c[-1] == '-'))
            continue;
        const unsigned char *hex = c[0] == 'r' && c[1] == '-' ? c + 2 : c;
        size_t run = 0;
        while (s_is_hex (hex[run]))
            run++;
        bool alone = !isalnum (hex[run]) && hex[run] != '-';
        if (alone && ((hex != c && run == REQUEST_ID_HEX_DIGITS) || (hex == c && run == TRACE_ID_HEX_DIGITS)))
            return true;
    }
    return false;
}

char *
responder_guard_clean (const char *text, size_t max_bytes, const char **rule, cv_error_t *err)
{
    assert (text);
    assert (max_bytes > 0);
    const char *broken = NULL; /* the rule that refuses it */
    char *clean = NULL;
    if (!cv_utf8_valid (text, strlen (text))) {
        cv_error_set (err, CV_ERR_INVALID, "reply.text", "reply is not valid UTF-8");
        broken = "invalid_utf8";
    } else if (!*(clean = s_collapse (text))) {
        cv_error_set (err, CV_ERR_INVALID, "reply.text", "reply is empty");
        broken = "empty";
    }
    for (size_t i = 0; !broken && i < sizeof s_markers / sizeof s_markers[0]; i++)
        if (strstr (clean, s_markers[i].marker)) {
            cv_error_set (err, CV_ERR_INVALID, "reply.text", "reply contains \"%s\", %s", s_markers[i].marker,
                          s_markers[i].what);
            broken = s_markers[i].rule;
        }
    if (!broken && s_long_number (clean)) {
        cv_error_set (err, CV_ERR_INVALID, "reply.text",
                      "reply contains a card or account number: only its last four digits may show");
        broken = "card_number";
    } else if (!broken && s_internal_id (clean)) {
        cv_error_set (err, CV_ERR_INVALID, "reply.text", "reply contains an internal identifier");
        broken = "internal_id";
    }
    if (!broken) {
        s_cut (clean, max_bytes);
        if (!*clean) {
            cv_error_set (err, CV_ERR_INVALID, "reply.text", "reply is empty once cut to %zu bytes", max_bytes);
            broken = "empty";
        }
    }
    if (rule)
        *rule = broken;
    if (broken) {
        free (clean);
        return NULL;
    }
    return clean;
}

int
responder_guard_personal (const cv_personal_t *personal, const char *reply, const char *known, cv_error_t *err)
{
    assert (personal && reply && known);
    cv_personal_match_t found[16];
    long count = cv_personal_find (personal, reply, found, sizeof found / sizeof *found);
    if (count < 0)
        return cv_error_set (err, CV_ERR_INVALID, "reply.text", "reply could not be scanned for personal data");
    if (count > (long) (sizeof found / sizeof *found))
        return cv_error_set (err, CV_ERR_INVALID, "reply.text", "reply holds %ld pieces of personal data", count);
    /* what known holds, each in its normal form: a reply's value must be one of them exactly */
    cv_personal_match_t given[64];
    long given_count = cv_personal_find (personal, known, given, sizeof given / sizeof *given);
    if (given_count > (long) (sizeof given / sizeof *given))
        given_count = (long) (sizeof given / sizeof *given); /* the first ones; a value past them is refused */
    char *forms[sizeof given / sizeof *given];
    for (long i = 0; i < given_count; i++)
        forms[i] = cv_personal_normal (given[i].kind, known + given[i].start, given[i].end - given[i].start);
    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        char *value = cv_personal_normal (found[i].kind, reply + found[i].start, found[i].end - found[i].start);
        bool held = false;
        for (long j = 0; j < given_count && !held; j++)
            held = strcmp (forms[j], value) == 0;
        if (!held)
            rc = cv_error_set (err, CV_ERR_INVALID, "reply.text",
                               "reply contains personal data (%s) that its facts do not hold: another customer's, or "
                               "made up",
                               cv_personal_kind_name (found[i].kind));
        free (value);
    }
    for (long i = 0; i < given_count; i++)
        free (forms[i]);
    return rc;
}

/*  --------------------------------------------------------------------------
    Self-test */

static void
s_expect_clean (const char *text, size_t max_bytes, const char *expected)
{
    cv_error_t err;
    char *clean = responder_guard_clean (text, max_bytes, NULL, &err);
    cv_assert_that (!(!clean || strcmp (clean, expected) != 0),
                    "responder_guard: '%s' (max %zu) gave '%s', expected '%s'%s%s", text, max_bytes,
                    clean ? clean : "(refused)", expected, clean ? "" : ": ", clean ? "" : err.message);
    assert (strlen (clean) <= max_bytes);
    free (clean);
}

static void
s_expect_refused (const char *text, const char *reason)
{
    cv_error_t err;
    const char *rule = NULL;
    char *clean = responder_guard_clean (text, 8000, &rule, &err);
    cv_assert_that (!(clean || !strstr (err.message, reason)),
                    "responder_guard: '%s' gave '%s', expected a refusal with '%s'", text, clean ? clean : err.message,
                    reason);
    assert (err.code == CV_ERR_INVALID && rule);
    assert (strcmp (err.field, "reply.text") == 0);
}

/* text is refused by the rule of that name, and a clean one names none. */
static void
s_expect_rule (const char *text, const char *rule)
{
    cv_error_t err;
    const char *broken = "not set";
    char *clean = responder_guard_clean (text, 8000, &broken, &err);
    cv_assert_that (rule ? !clean && broken && strcmp (broken, rule) == 0 : clean && !broken, "'%s': rule %s", text,
                    broken ? broken : "none");
    free (clean);
}

void
responder_guard_test (bool verbose)
{
    /* personal data an LLM's reply shows must be in what it was given */
    cv_error_t err;
    cv_personal_t *personal = cv_personal_new (&err);
    assert (personal);
    const char *known =
        "Facts: {\"email\": \"Alex@Example.com\", \"iban\": \"IE29AIBK93115212345678\"}\nMy number is +353 1 234 5678";
    assert (responder_guard_personal (personal, "We wrote to alex@example.com about IE29 AIBK 9311 5212 3456 78.",
                                      known, &err)
            == 0);
    assert (responder_guard_personal (personal, "We will call you on +353 (1) 234-5678.", known, &err) == 0);
    assert (responder_guard_personal (personal, "Your card ending 4417 arrives on 2026-03-15.", known, &err) == 0);
    /* a value must be one the facts hold, whole: not part of another */
    const char *longer = "Facts: {\"email\": \"ann.lee@example.com\"}\nCall me on 00353 1 234 5678.";
    assert (responder_guard_personal (personal, "We will call +353 1 234 5678.", longer, &err) == 0);
    assert (responder_guard_personal (personal, "Write to lee@example.com.", longer, &err) == -1);
    const char *leaks[] = {"Write to sam.jones@example.com.", "Sam's IBAN is GB33 BUKB 2020 1555 5555 55.",
                           "Call +44 20 7946 0958.", "The card 4417 1234 5678 9113 is blocked."};
    const char *kinds[] = {"(email)", "(iban)", "(phone)", "(card)"};
    for (size_t i = 0; i < 4; i++)
        cv_assert_that (responder_guard_personal (personal, leaks[i], known, &err) == -1
                            && strstr (err.message, kinds[i]) && strcmp (err.field, "reply.text") == 0,
                        "%s", leaks[i]);
    cv_personal_destroy (&personal);

    /* whitespace: folded YAML and database values */
    s_expect_clean ("Hello there.", 100, "Hello there.");
    s_expect_clean ("  Your card ending\n4417 is\t\tfrozen.  \n", 100, "Your card ending 4417 is frozen.");
    s_expect_clean ("line one\r\n\r\nline two\x0b\x0c end", 100, "line one line two end");
    s_expect_clean ("bell\x07"
                    "and\x1b[31mescape\x7f",
                    100, "bell and [31mescape");
    s_expect_clean ("caf\xc3\xa9 \xe2\x82\xac 5", 100, "caf\xc3\xa9 \xe2\x82\xac 5");
    s_expect_clean ("arrive by Sunday 18 January  . Tracking: CP1 , thanks !", 100,
                    "arrive by Sunday 18 January. Tracking: CP1, thanks!");
    s_expect_clean ("rate 0 .935 and 1 . 5 and a ...", 100, "rate 0 .935 and 1. 5 and a ...");

    /* length: cut at the limit, never inside a UTF-8 sequence, no trailing space */
    s_expect_clean ("abcdef", 6, "abcdef");
    s_expect_clean ("abcdefgh", 6, "abcdef");
    s_expect_clean ("abc defgh", 4, "abc");
    s_expect_clean ("ab\xc3\xa9z", 3, "ab"); /* é is 2 bytes at 2..3 */
    s_expect_clean ("ab\xc3\xa9z", 4, "ab\xc3\xa9");
    s_expect_clean ("a\xe2\x82\xac\xe2\x82\xac", 6, "a\xe2\x82\xac"); /* € is 3 bytes */
    size_t big = 20000;
    char *long_text = cv_malloc (big + 1);
    for (size_t i = 0; i < big; i += 2)
        memcpy (long_text + i, "\xc3\xa9", 2);
    long_text[big] = '\0';
    char *clean = responder_guard_clean (long_text, 8001, NULL, &err);
    assert (clean && strlen (clean) == 8000);
    assert (cv_utf8_valid (clean, strlen (clean)));
    free (clean);
    free (long_text);

    /* nothing to send */
    s_expect_rule ("Your card is on its way.", NULL);
    s_expect_rule ("", "empty");
    s_expect_rule ("caf\xc3", "invalid_utf8");
    s_expect_rule ("Hello {{name}}", "placeholder");
    s_expect_rule ("SQLSTATE 42P01", "database_error");
    s_expect_rule ("Your card 4417123456789012", "card_number");
    s_expect_rule ("request r-19d91be3d13fd13b425a8", "internal_id");
    s_expect_refused ("", "empty");
    s_expect_refused (" \n\t ", "empty");
    s_expect_refused ("caf\xc3", "UTF-8");
    clean = responder_guard_clean ("\xf0\x9f\x92\xb3 card", 3, NULL, &err); /* not one whole character fits */
    assert (!clean && strstr (err.message, "empty once cut to 3 bytes"));

    /* internal fields and failures' insides */
    s_expect_refused ("Hello {{evidence.customer_profile.0.first_name}}", "template placeholder");
    s_expect_refused ("a stray }} brace", "template placeholder");
    s_expect_refused ("Traceback (most recent call last): File \"x.py\"", "stack trace");
    s_expect_refused ("java.lang.NullPointerException at Foo.bar", "\"Exception\"");
    s_expect_refused ("postgresql statement failed (42P01): relation does not exist SQLSTATE", "database error");
    s_expect_refused ("ERROR:  relation \"bank.cards\" does not exist", "\"ERROR:\"");
    s_expect_refused ("FATAL: terminating connection", "error message");
    s_expect_refused ("Segmentation\n fault (core dumped)", "crash report");
    s_expect_refused ("see postgresql://app:secret@db/conveyor", "connection URL");
    s_expect_refused ("your request_id is 1234", "envelope field");
    s_expect_refused ("trace_id=0af7651916cd43dd8448eb211c80319c", "envelope field");

    /* numbers: a card's last four, an amount, a phone number or a tracking number pass; a
       whole card or account number, grouped or not, does not */
    s_expect_clean ("Card ending 4417, 18.90 EUR, call +353 1 234 5678, tracking CP482913374IE.", 200,
                    "Card ending 4417, 18.90 EUR, call +353 1 234 5678, tracking CP482913374IE.");
    s_expect_clean ("ids 1234-5678-901 and 12 345 678 901", 200, "ids 1234-5678-901 and 12 345 678 901");
    s_expect_refused ("Your card 4417123456789012 is frozen", "card or account number");
    s_expect_refused ("Your card 4417 1234 5678 9012 is frozen", "card or account number");
    s_expect_refused ("account 1234-5678-9012", "card or account number");
    /* conveyor's own identifiers */
    s_expect_refused ("Your request r-19d91be3d13fd13b425a8 is done", "internal identifier");
    s_expect_refused ("(0d2787504ddde71452cf9d76152fd9bf)", "internal identifier");
    s_expect_clean ("ref-1-1-8, xr-19d91be3d13fd13b425a8, r-19d91be3d13fd13b425a, deadbeef", 200,
                    "ref-1-1-8, xr-19d91be3d13fd13b425a8, r-19d91be3d13fd13b425a, deadbeef");

    /* ordinary words that merely resemble markers pass */
    s_expect_clean ("With the exception of fees, an error: none. { braces } are fine.", 200,
                    "With the exception of fees, an error: none. { braces } are fine.");
    if (verbose)
        printf ("responder_guard: ok\n");
}
