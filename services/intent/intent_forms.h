/* The normal forms of slot values that intent_slots reads from a customer's words: numbers as
   amounts are written, counts in words, and dates relative to the day the text was written.

   Dates are days since 1970-01-01 (negative before), through libc's timegm and gmtime_r, which
   know the Gregorian calendar and, in UTC, no time zone. Pure functions: no state, no I/O. */
#ifndef INTENT_FORMS_H
#define INTENT_FORMS_H

#include <stdbool.h>
#include <stddef.h>

/* A number as written ("1.234,56", "1,234.56", "12,5", "1'250") into its normal form in out (out_size bytes):
   integer digits without grouping, then "." and two decimals, or none when decimals is 0 and the
   fraction is zero. False for what is no well-formed number: groups of the wrong size, mixed
   grouping marks, more than twelve integer digits. */
bool intent_forms_number (const char *text, size_t size, int decimals, char *out, size_t out_size);

/* A count as a customer writes it: "3", "three", "a", "a couple of". 0 when unknown. */
int intent_forms_count (const char *text);

/* True when the date exists (month 1..12, day within it). */
bool intent_forms_valid (int year, int month, int day);
/* The days of an existing date. */
long intent_forms_days (int year, int month, int day);
/* Writes days as "YYYY-MM-DD" into out (size bytes, at least 11). */
void intent_forms_date (long days, char *out, size_t size);

/* The date of day and month in year, given as the text wrote it ("2026", or "26" for 2026), or
   when year is NULL the most recent such date on or before today (eight years back reach any
   29 February), into *days. False for a date that does not exist or a year outside 1900-2199. */
bool intent_forms_day_month (long today, const char *year, int month, int day, long *days);

/* count units ago (unit 'd' days, 'w' weeks, 'f' fortnights, 'm' months, which keep the day of
   the month, clamped to the month's end) into *days; false for another unit or a count below 1. */
bool intent_forms_ago (long today, int count, char unit, long *days);

/* The weekday (ISO: 1 Monday .. 7 Sunday) strictly before today, or strictly after it when ahead. */
long intent_forms_weekday (long today, int weekday, bool ahead);

void intent_forms_test (bool verbose);

#endif
