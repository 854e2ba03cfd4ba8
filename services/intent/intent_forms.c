/* Slot values in their normal forms: numbers, counts and dates. */
#include "intent_forms.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cv_assert.h"

bool
intent_forms_number (const char *text, size_t size, int decimals, char *out, size_t out_size)
{
    enum { MOST = 8 };
    const char *group[MOST];
    size_t length[MOST];
    char mark[MOST]; /* the separator after each group: '.', ',' or 'g' (any other) */
    size_t count = 0, at = 0;
    while (at < size) {
        if (count == MOST)
            return false;
        group[count] = text + at;
        length[count] = 0;
        while (at < size && text[at] >= '0' && text[at] <= '9') {
            at++;
            length[count]++;
        }
        if (length[count] == 0)
            return false;
        size_t start = at;
        while (at < size && !(text[at] >= '0' && text[at] <= '9'))
            at++;
        mark[count] = at - start == 1 && (text[start] == '.' || text[start] == ',') ? text[start] : 'g';
        count++;
    }
    if (count == 0)
        return false;
    /* a last group of one or two digits after a dot or comma is the fraction */
    size_t whole = count;
    const char *fraction = NULL;
    size_t fraction_length = 0;
    if (count >= 2 && mark[count - 2] != 'g' && length[count - 1] <= 2) {
        whole = count - 1;
        fraction = group[whole];
        fraction_length = length[whole];
    }
    /* separators inside the integer part group thousands: all alike, not the decimal mark, a first
       group of one to three digits (not a lone 0: "0.123" is no thousand) and groups of three */
    if (whole > 1) {
        if (length[0] > 3 || (length[0] == 1 && group[0][0] == '0'))
            return false;
        for (size_t i = 1; i < whole; i++)
            if (length[i] != 3 || mark[i - 1] != mark[0])
                return false;
        if (fraction && mark[whole - 1] == mark[0])
            return false;
    }
    char digits[16];
    size_t used = 0;
    for (size_t i = 0; i < whole; i++)
        for (size_t j = 0; j < length[i]; j++) {
            char c = group[i][j];
            if (used == 0 && c == '0')
                continue;
            if (used == 12)
                return false;
            digits[used++] = c;
        }
    if (used == 0)
        digits[used++] = '0';
    digits[used] = '\0';
    char cents[3] = {'0', '0', '\0'};
    if (fraction) {
        cents[0] = fraction[0];
        cents[1] = fraction_length == 2 ? fraction[1] : '0';
    }
    if (decimals == 0 && strcmp (cents, "00") == 0)
        snprintf (out, out_size, "%s", digits);
    else
        snprintf (out, out_size, "%s.%s", digits, cents);
    return true;
}

int
intent_forms_count (const char *text)
{
    static const char *const words[] = {"a",   "an",    "one",   "two",  "three", "four",   "five",
                                        "six", "seven", "eight", "nine", "ten",   "eleven", "twelve"};
    if (text[0] >= '0' && text[0] <= '9')
        return atoi (text);
    if (strcasestr (text, "couple"))
        return 2;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp (text, words[i]) == 0)
            return i < 2 ? 1 : (int) i - 1;
    return 0; /* a caseless match of another script's letters ("ſix"): no count we know */
}

static struct tm
s_civil (long days)
{
    time_t t = (time_t) days * 86400;
    struct tm tm;
    gmtime_r (&t, &tm);
    return tm;
}

long
intent_forms_days (int year, int month, int day)
{
    struct tm tm = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day};
    return (long) (timegm (&tm) / 86400);
}

/* timegm takes month 13 for January of the next year. */
static int
s_month_days (int year, int month)
{
    return (int) (intent_forms_days (year, month + 1, 1) - intent_forms_days (year, month, 1));
}

bool
intent_forms_valid (int year, int month, int day)
{
    return month >= 1 && month <= 12 && day >= 1 && day <= s_month_days (year, month);
}

void
intent_forms_date (long days, char *out, size_t size)
{
    struct tm tm = s_civil (days);
    snprintf (out, size, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

bool
intent_forms_day_month (long today, const char *year_text, int month, int day, long *days)
{
    assert (days);
    if (year_text) {
        int year = atoi (year_text) + (strlen (year_text) == 2 ? 2000 : 0);
        if (!(year >= 1900 && year <= 2199 && intent_forms_valid (year, month, day)))
            return false;
        *days = intent_forms_days (year, month, day);
        return true;
    }
    int year = s_civil (today).tm_year + 1900;
    for (int back = 0; back <= 8; back++, year--)
        if (intent_forms_valid (year, month, day) && intent_forms_days (year, month, day) <= today) {
            *days = intent_forms_days (year, month, day);
            return true;
        }
    return false;
}

bool
intent_forms_ago (long today, int count, char unit, long *days)
{
    assert (days);
    if (count <= 0)
        return false;
    if (unit == 'd' || unit == 'w' || unit == 'f') {
        *days = today - (long) count * (unit == 'd' ? 1 : unit == 'w' ? 7 : 14);
        return true;
    }
    if (unit != 'm')
        return false;
    struct tm now = s_civil (today);
    long index = (long) (now.tm_year + 1900) * 12 + now.tm_mon - count;
    int year = (int) (index / 12), month = (int) (index % 12) + 1, day = now.tm_mday;
    if (day > s_month_days (year, month))
        day = s_month_days (year, month);
    *days = intent_forms_days (year, month, day);
    return true;
}

long
intent_forms_weekday (long today, int weekday, bool ahead)
{
    assert (weekday >= 1 && weekday <= 7);
    int now = s_civil (today).tm_wday;
    now = now ? now : 7;
    if (ahead) {
        int forward = (weekday - now + 7) % 7;
        return today + (forward ? forward : 7);
    }
    int back = (now - weekday + 7) % 7;
    return today - (back ? back : 7);
}

/*  --------------------------------------------------------------------------
    Self-test */

static void
s_expect_date (long days, const char *expected)
{
    char text[16];
    intent_forms_date (days, text, sizeof text);
    cv_assert_that (strcmp (text, expected) == 0, "intent_forms: %s where %s was expected", text, expected);
}

void
intent_forms_test (bool verbose)
{
    /* the calendar: 1970-01-01 is day 0, a Thursday; leap years; every day of 1900-9000 both ways */
    assert (intent_forms_days (1970, 1, 1) == 0 && intent_forms_days (1969, 12, 31) == -1);
    assert (s_month_days (2024, 2) == 29 && s_month_days (2100, 2) == 28 && s_month_days (2000, 2) == 29);
    assert (s_month_days (2026, 12) == 31 && s_month_days (2026, 4) == 30);
    assert (intent_forms_valid (2000, 2, 29) && !intent_forms_valid (2026, 2, 29) && !intent_forms_valid (2026, 13, 1));
    assert (!intent_forms_valid (2026, 0, 1) && !intent_forms_valid (2026, 3, 0) && !intent_forms_valid (2026, 4, 31));
    for (long days = intent_forms_days (1900, 1, 1); days < intent_forms_days (9000, 1, 1); days += days < 0 ? 1 : 7) {
        struct tm tm = s_civil (days);
        assert (intent_forms_days (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) == days);
    }
    long today = intent_forms_days (2026, 3, 18); /* a Wednesday */
    s_expect_date (today, "2026-03-18");
    s_expect_date (intent_forms_days (1900, 1, 1), "1900-01-01");

    /* weekdays: strictly before, or strictly after */
    s_expect_date (intent_forms_weekday (today, 3, false), "2026-03-11");
    s_expect_date (intent_forms_weekday (today, 2, false), "2026-03-17");
    s_expect_date (intent_forms_weekday (today, 4, false), "2026-03-12");
    s_expect_date (intent_forms_weekday (today, 3, true), "2026-03-25");
    s_expect_date (intent_forms_weekday (today, 7, true), "2026-03-22");

    /* day and month, with a year or the latest before today */
    long days = 0;
    assert (intent_forms_day_month (today, "2026", 3, 15, &days));
    s_expect_date (days, "2026-03-15");
    assert (intent_forms_day_month (today, "26", 3, 15, &days));
    s_expect_date (days, "2026-03-15");
    assert (!intent_forms_day_month (today, "2026", 2, 31, &days));
    assert (!intent_forms_day_month (today, "1899", 1, 1, &days));
    assert (!intent_forms_day_month (today, "2200", 1, 1, &days));
    assert (intent_forms_day_month (today, NULL, 3, 18, &days) && days == today);
    assert (intent_forms_day_month (today, NULL, 3, 19, &days));
    s_expect_date (days, "2025-03-19");
    assert (intent_forms_day_month (today, NULL, 2, 29, &days));
    s_expect_date (days, "2024-02-29");
    assert (!intent_forms_day_month (today, NULL, 2, 30, &days));

    /* ago: months keep the day, clamped */
    assert (intent_forms_ago (today, 3, 'd', &days));
    s_expect_date (days, "2026-03-15");
    assert (intent_forms_ago (today, 2, 'f', &days));
    s_expect_date (days, "2026-02-18");
    assert (intent_forms_ago (intent_forms_days (2026, 3, 31), 1, 'm', &days));
    s_expect_date (days, "2026-02-28");
    assert (intent_forms_ago (intent_forms_days (2026, 1, 15), 13, 'm', &days));
    s_expect_date (days, "2024-12-15");
    assert (!intent_forms_ago (today, 0, 'd', &days) && !intent_forms_ago (today, 1, 'y', &days));

    /* counts */
    assert (intent_forms_count ("3") == 3 && intent_forms_count ("three") == 3 && intent_forms_count ("An") == 1);
    assert (intent_forms_count ("a couple of") == 2 && intent_forms_count ("twelve") == 12);
    assert (intent_forms_count ("dozen") == 0);

    /* numbers */
    static const struct {
        const char *text;
        int decimals;
        const char *expected; /* NULL: no number */
    } numbers[] = {
        {"12,50", 2, "12.50"},
        {"1.234,56", 2, "1234.56"},
        {"1,234.56", 2, "1234.56"},
        {"1'250", 2, "1250.00"},
        {"1.234", 2, "1234.00"},
        {"0,5", 2, "0.50"},
        {"1000", 0, "1000"},
        {"12.50", 0, "12.50"},
        {"007", 2, "7.00"},
        {"1,23,456", 2, NULL},
        {"0.123", 2, NULL},
        {"1.234.56", 2, NULL},
        {"1,234,567.89", 2, "1234567.89"},
        {"1.234,567", 2, NULL},
        {"1234567890123", 2, NULL},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char out[32] = "";
        bool read =
            intent_forms_number (numbers[i].text, strlen (numbers[i].text), numbers[i].decimals, out, sizeof out);
        cv_assert_that (!(read != (numbers[i].expected != NULL) || (read && strcmp (out, numbers[i].expected) != 0)),
                        "intent_forms: '%s' gave %s", numbers[i].text, read ? out : "no number");
        if (verbose)
            printf ("  %s -> %s\n", numbers[i].text, read ? out : "(none)");
    }
    if (verbose)
        printf ("intent_forms: ok\n");
}
