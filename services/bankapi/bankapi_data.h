/* What the demo bank's other systems answer, with no I/O: the FX-rate service's rates and the
   card-delivery tracker's parcels.

   Rates come from a deterministic in-memory table: the reference mid rates the demo bank's
   generator starts from (bank.per_eur in deploy/sql/migrations/0002_demo_bank.sql; its
   bank.exchange_rates are these, each nudged by up to 0.3 %). The service stands in for an
   outside provider, which has no access to the bank's database: it starts, answers and is
   tested with no PostgreSQL, and its answers never depend on what was seeded.

   A parcel's status and expected date follow from its tracking number alone (a hash of it) and
   the day it is asked about, so that the same number always tells the same story on a given day.
   Tracking numbers are those the demo bank's cards carry (bank.cards.delivery_tracking): "CP",
   nine digits and the destination's country code, as in "CP482913374IE". */
#ifndef BANKAPI_DATA_H
#define BANKAPI_DATA_H

#include <stdbool.h>
#include <stdint.h>

/* The currencies quoted, as in the demo bank. */
#define BANKAPI_CURRENCIES "EUR, GBP, USD, CHF, PLN"

/* Units of quote for one unit of base, rounded to 8 decimals as bank.exchange_rates is; false
   when either is not one of BANKAPI_CURRENCIES (upper case) or they are the same. */
bool bankapi_data_fx_rate (const char *base, const char *quote, double *rate);

typedef struct {
    const char *status;     /* "in_transit", "out_for_delivery" or "delayed" (static) */
    const char *carrier;    /* the destination's postal carrier (static) */
    const char *last_event; /* a sentence about the last scan (static) */
    char country[3];        /* the destination, from the number */
    int64_t expected_day;   /* the expected delivery day, in days since 1970-01-01 */
} bankapi_delivery_t;

/* Whether tracking has the demo bank's form ("CP" + 9 digits + 2 upper-case letters). */
bool bankapi_data_tracking_valid (const char *tracking);
/* The parcel tracking stands for, as of today (days since 1970-01-01); false when tracking is
   not of the bank's form. */
bool bankapi_data_delivery (const char *tracking, int64_t today, bankapi_delivery_t *delivery);

/* day (days since 1970-01-01) as "YYYY-MM-DD" into out (>= 11 bytes). */
void bankapi_data_format_day (int64_t day, char *out);
/* "YYYY-MM-DD" as days since 1970-01-01; false when it is not a valid date. */
bool bankapi_data_parse_day (const char *text, int64_t *day);

void bankapi_data_test (bool verbose);

#endif
