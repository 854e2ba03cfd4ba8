/* Personal data in free text (cv_personal.h). */
#include "cv_personal.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_pcre.h"

static const struct {
    const char *name;
    const char *pattern;
} s_kinds[CV_PERSONAL_KINDS] = {
    [CV_PERSONAL_EMAIL] = {"email", "(?i)\\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\\.[a-z0-9-]+)*\\.[a-z]{2,}\\b"},
    /* + or 00, a country code, then 7 to 14 more digits, each maybe after one separator */
    [CV_PERSONAL_PHONE] = {"phone", "(?<![\\w+])(?:\\+|00)[1-9](?:[ .()-]{0,2}[0-9]){7,14}(?![0-9])"},
    /* a country's two letters, two check digits, then 11 to 30 letters and digits, maybe in groups */
    [CV_PERSONAL_IBAN] = {"iban", "\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\\b"},
    /* a word of its own (the digits inside a hexadecimal id are no card number), never from 0 (no
       card number starts so; an international 00 does) */
    [CV_PERSONAL_CARD] = {"card", "(?<![0-9A-Za-z])[1-9](?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])"},
};

struct _cv_personal_t {
    pcre2_code *codes[CV_PERSONAL_KINDS];
    pcre2_match_context *context;
};

const char *
cv_personal_kind_name (cv_personal_kind_t kind)
{
    assert (kind >= CV_PERSONAL_EMAIL && kind < CV_PERSONAL_KINDS);
    return s_kinds[kind].name;
}

cv_personal_t *
cv_personal_new (cv_error_t *err)
{
    cv_personal_t *self = cv_calloc (1, sizeof *self);
    if (!(self->context = cv_pcre_context_new ())) {
        cv_error_set (err, CV_ERR_INTERNAL, NULL, "out of memory");
        cv_personal_destroy (&self);
        return NULL;
    }
    for (size_t i = 0; i < CV_PERSONAL_KINDS; i++)
        if (!(self->codes[i] = cv_pcre_compile (s_kinds[i].pattern, CV_PCRE_OPTIONS, s_kinds[i].name, err))) {
            cv_personal_destroy (&self);
            return NULL;
        }
    return self;
}

void
cv_personal_destroy (cv_personal_t **self_p)
{
    assert (self_p);
    cv_personal_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < CV_PERSONAL_KINDS; i++)
        pcre2_code_free (self->codes[i]);
    pcre2_match_context_free (self->context);
    free (self);
    *self_p = NULL;
}

/* Whether [start, end) overlaps one of the count values found before: the digits of an IBAN are
   not a card number as well. */
static bool
s_overlaps (const cv_personal_match_t *found, size_t count, size_t start, size_t end)
{
    for (size_t i = 0; i < count; i++)
        if (start < found[i].end && found[i].start < end)
            return true;
    return false;
}

long
cv_personal_find (const cv_personal_t *self, const char *text, cv_personal_match_t *out, size_t max)
{
    assert (self && text && (out || max == 0));
    size_t size = strlen (text);
    long found = 0;
    pcre2_match_data *match = pcre2_match_data_create (1, NULL);
    if (!match)
        return -1;
    char *subject = cv_pcre_subject (text, size);
    /* the longer forms first: the groups of an IBAN or a card number may look like a phone number */
    static const cv_personal_kind_t order[CV_PERSONAL_KINDS] = {CV_PERSONAL_EMAIL, CV_PERSONAL_IBAN, CV_PERSONAL_CARD,
                                                                CV_PERSONAL_PHONE};
    for (size_t k = 0; k < CV_PERSONAL_KINDS; k++)
        for (size_t from = 0, kind = order[k]; from <= size;) {
            int rc = pcre2_match (self->codes[kind], (PCRE2_SPTR) subject, size, from, 0, match, self->context);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0) {
                found = -1;
                goto done;
            }
            PCRE2_SIZE *at = pcre2_get_ovector_pointer (match);
            if (!s_overlaps (out, (size_t) found < max ? (size_t) found : max, at[0], at[1])) {
                if ((size_t) found < max)
                    out[found] = (cv_personal_match_t){(cv_personal_kind_t) kind, at[0], at[1]};
                found++;
            }
            from = at[1] > at[0] ? at[1] : at[1] + 1; /* the patterns match at least a character */
        }
done:
    free (subject);
    pcre2_match_data_free (match);
    return found;
}

char *
cv_personal_redact (const cv_personal_t *self, const char *text)
{
    assert (self && text);
    cv_personal_match_t found[32];
    long count = cv_personal_find (self, text, found, sizeof found / sizeof *found);
    if (count < 0 || count > (long) (sizeof found / sizeof *found))
        return cv_strdup ("[text withheld: it could not be scanned for personal data]");
    /* the matches in the order of their places */
    for (long i = 1; i < count; i++)
        for (long j = i; j > 0 && found[j].start < found[j - 1].start; j--) {
            cv_personal_match_t swap = found[j];
            found[j] = found[j - 1];
            found[j - 1] = swap;
        }
    char *out = NULL;
    size_t size = 0, at = 0;
    FILE *stream = open_memstream (&out, &size);
    for (long i = 0; i < count; i++) {
        fwrite (text + at, 1, found[i].start - at, stream);
        fprintf (stream, "[%s]", s_kinds[found[i].kind].name);
        at = found[i].end;
    }
    fputs (text + at, stream);
    fclose (stream);
    return out;
}

char *
cv_personal_normal (cv_personal_kind_t kind, const char *text, size_t size)
{
    char *normal = cv_malloc (size + 1);
    size_t used = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char) text[i];
        if (kind == CV_PERSONAL_EMAIL)
            normal[used++] = (char) tolower (c);
        else if (!strchr (" .-()", c))
            normal[used++] = (char) toupper (c);
    }
    normal[used] = '\0';
    if (kind == CV_PERSONAL_PHONE && strncmp (normal, "00", 2) == 0) { /* 00 is the international prefix, + */
        memmove (normal + 1, normal + 2, used - 1);
        normal[0] = '+';
    }
    return normal;
}

/*  --------------------------------------------------------------------------
    Self-test */

/* text holds exactly expected ("kind:value,..."; "" for nothing). */
static void
s_expect (const cv_personal_t *personal, const char *text, const char *expected)
{
    cv_personal_match_t found[8];
    long count = cv_personal_find (personal, text, found, 8);
    assert (count >= 0 && count <= 8);
    char got[512] = "";
    for (long i = 0; i < count; i++)
        snprintf (got + strlen (got), sizeof got - strlen (got), "%s%s:%.*s", i ? "," : "",
                  cv_personal_kind_name (found[i].kind), (int) (found[i].end - found[i].start), text + found[i].start);
    cv_assert_that (strcmp (got, expected) == 0, "\"%s\": found \"%s\", expected \"%s\"", text, got, expected);
}

void
cv_personal_test (bool verbose)
{
    cv_error_t err;
    cv_personal_t *personal = cv_personal_new (&err);
    cv_assert_that (personal, "%s", err.message);
    s_expect (personal, "Write to Alex.Morgan+bank@Example.co.uk today.", "email:Alex.Morgan+bank@Example.co.uk");
    s_expect (personal, "Call +353 1 234 5678 or 0044 (20) 7946-0958.",
              "phone:+353 1 234 5678,phone:0044 (20) 7946-0958");
    s_expect (personal, "Pay to IE29 AIBK 9311 5212 3456 78 or DE89370400440532013000.",
              "iban:IE29 AIBK 9311 5212 3456 78,iban:DE89370400440532013000");
    s_expect (personal, "The card 4417 1234 5678 9113 was charged.", "card:4417 1234 5678 9113");
    s_expect (personal, "Card 4417-1234-5678-9113", "card:4417-1234-5678-9113");
    /* what is not personal data: dates, amounts, last four digits, tracking and reference numbers */
    s_expect (personal,
              "On 2026-03-15 at 14:05 you paid EUR 1,234.56 with the card ending 4417; tracking CP482913374IE,"
              " reference TR-2026-0042, 1 EUR = 1.0842 USD, +20% on 100 items, call 1800 123 456.",
              "");
    s_expect (personal, "", "");
    s_expect (personal, "IBAN DE89 3704 0044 0532 0130 00 and card 4417 0012 3456 7890",
              "iban:DE89 3704 0044 0532 0130 00,card:4417 0012 3456 7890");
    s_expect (personal, "request r-4417123456789012345ab and trace 0af76519161234567890123dd", "");
    char *redacted = cv_personal_redact (personal, "Mail alex@example.com, pay IE29 AIBK 9311 5212 3456 78, card "
                                                   "4417 1234 5678 9113, call +353 1 234 5678.");
    cv_assert_that (strcmp (redacted, "Mail [email], pay [iban], card [card], call [phone].") == 0, "%s", redacted);
    free (redacted);
    redacted = cv_personal_redact (personal, "nothing here");
    assert (strcmp (redacted, "nothing here") == 0);
    free (redacted);
    /* the normal forms that compare */
    char *a = cv_personal_normal (CV_PERSONAL_IBAN, "ie29 aibk 9311", 14);
    assert (strcmp (a, "IE29AIBK9311") == 0);
    free (a);
    a = cv_personal_normal (CV_PERSONAL_PHONE, "+353 (1) 234-5678", 17);
    assert (strcmp (a, "+35312345678") == 0);
    free (a);
    a = cv_personal_normal (CV_PERSONAL_PHONE, "00353 1 234 5678", 16);
    assert (strcmp (a, "+35312345678") == 0);
    free (a);
    a = cv_personal_normal (CV_PERSONAL_EMAIL, "Alex@Example.COM", 16);
    assert (strcmp (a, "alex@example.com") == 0);
    free (a);
    cv_personal_destroy (&personal);
    if (verbose)
        printf ("cv_personal: ok\n");
}
