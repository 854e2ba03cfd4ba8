/* The FX table and the delivery tracker's parcels, computed with no I/O. */
#include "bankapi_data.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cv_assert.h"

/* Units of each currency for one euro: bank.per_eur's reference rates. */
static const struct {
    const char *code;
    double per_eur;
} s_rates[] = {{"EUR", 1.0}, {"GBP", 0.86}, {"USD", 1.16}, {"CHF", 0.935}, {"PLN", 4.25}};

static const struct {
    const char *country;
    const char *carrier;
} s_carriers[] = {{"IE", "An Post"},       {"GB", "Royal Mail"}, {"DE", "Deutsche Post"}, {"FR", "La Poste"},
                  {"PL", "Poczta Polska"}, {"CH", "Swiss Post"}, {"ES", "Correos"},       {"IT", "Poste Italiane"}};

static double
s_per_eur (const char *code)
{
    for (size_t i = 0; i < sizeof s_rates / sizeof s_rates[0]; i++)
        if (strcmp (s_rates[i].code, code) == 0)
            return s_rates[i].per_eur;
    return 0;
}

bool
bankapi_data_fx_rate (const char *base, const char *quote, double *rate)
{
    assert (base && quote && rate);
    double from = s_per_eur (base), to = s_per_eur (quote);
    if (from == 0 || to == 0 || strcmp (base, quote) == 0)
        return false;
    *rate = round (to / from * 1e8) / 1e8;
    return true;
}

bool
bankapi_data_tracking_valid (const char *tracking)
{
    assert (tracking);
    if (strlen (tracking) != 13 || strncmp (tracking, "CP", 2) != 0)
        return false;
    for (int i = 2; i < 11; i++)
        if (tracking[i] < '0' || tracking[i] > '9')
            return false;
    return tracking[11] >= 'A' && tracking[11] <= 'Z' && tracking[12] >= 'A' && tracking[12] <= 'Z';
}

/* FNV-1a: a stable hash, the same on every machine. */
static uint64_t
s_hash (const char *text)
{
    uint64_t hash = 14695981039346656037ULL;
    for (const unsigned char *at = (const unsigned char *) text; *at; at++)
        hash = (hash ^ *at) * 1099511628211ULL;
    return hash;
}

bool
bankapi_data_delivery (const char *tracking, int64_t today, bankapi_delivery_t *delivery)
{
    assert (tracking && delivery);
    if (!bankapi_data_tracking_valid (tracking))
        return false;
    uint64_t hash = s_hash (tracking);
    memset (delivery, 0, sizeof *delivery);
    memcpy (delivery->country, tracking + 11, 2);
    delivery->carrier = "DHL";
    for (size_t i = 0; i < sizeof s_carriers / sizeof s_carriers[0]; i++)
        if (strcmp (s_carriers[i].country, delivery->country) == 0)
            delivery->carrier = s_carriers[i].carrier;
    unsigned draw = (unsigned) (hash % 10);
    if (draw < 7) {
        delivery->status = "in_transit";
        delivery->last_event = "Arrived at the sorting centre";
        delivery->expected_day = today + 1 + (int64_t) ((hash / 10) % 4);
    } else if (draw < 9) {
        delivery->status = "out_for_delivery";
        delivery->last_event = "Out for delivery with the local courier";
        delivery->expected_day = today;
    } else {
        delivery->status = "delayed";
        delivery->last_event = "Held at customs for inspection";
        delivery->expected_day = today + 5 + (int64_t) ((hash / 10) % 3);
    }
    return true;
}

void
bankapi_data_format_day (int64_t day, char *out)
{
    assert (out);
    time_t seconds = (time_t) (day * 86400);
    struct tm utc;
    gmtime_r (&seconds, &utc);
    strftime (out, 11, "%Y-%m-%d", &utc);
}

bool
bankapi_data_parse_day (const char *text, int64_t *day)
{
    assert (text && day);
    int year, month, mday;
    char rest;
    if (strlen (text) != 10 || sscanf (text, "%4d-%2d-%2d%c", &year, &month, &mday, &rest) != 3)
        return false;
    struct tm utc = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = mday, .tm_hour = 12};
    time_t seconds = timegm (&utc);
    if (seconds == (time_t) -1 || utc.tm_mday != mday || utc.tm_mon != month - 1)
        return false; /* timegm normalised it: 2026-02-30 is no date */
    *day = (int64_t) seconds / 86400;
    return true;
}

void
bankapi_data_test (bool verbose)
{
    double rate = 0;
    assert (bankapi_data_fx_rate ("EUR", "GBP", &rate) && rate == 0.86);
    assert (bankapi_data_fx_rate ("GBP", "EUR", &rate) && fabs (rate - 1.16279070) < 1e-9);
    assert (bankapi_data_fx_rate ("CHF", "PLN", &rate) && fabs (rate - 4.54545455) < 1e-9);
    assert (!bankapi_data_fx_rate ("EUR", "EUR", &rate));
    assert (!bankapi_data_fx_rate ("EUR", "JPY", &rate) && !bankapi_data_fx_rate ("eur", "GBP", &rate));
    assert (!bankapi_data_fx_rate ("", "GBP", &rate));

    assert (bankapi_data_tracking_valid ("CP482913374IE") && bankapi_data_tracking_valid ("CP000000000GB"));
    assert (!bankapi_data_tracking_valid ("CP48291337IE") && !bankapi_data_tracking_valid ("XP482913374IE"));
    assert (!bankapi_data_tracking_valid ("CP482913374ie") && !bankapi_data_tracking_valid ("CP4829133740IE"));
    assert (!bankapi_data_tracking_valid ("CP48291337AIE") && !bankapi_data_tracking_valid (""));

    int64_t today = 0;
    assert (bankapi_data_parse_day ("2026-11-21", &today));
    char text[11];
    bankapi_data_format_day (today, text);
    assert (strcmp (text, "2026-11-21") == 0);
    assert (!bankapi_data_parse_day ("2026-02-30", &today) && !bankapi_data_parse_day ("2026-1-01", &today));
    assert (!bankapi_data_parse_day ("2026-11-21x", &today) && !bankapi_data_parse_day ("yesterday", &today));
    assert (bankapi_data_parse_day ("1970-01-01", &today) && today == 0);

    /* the same number, the same story; the date moves with the day asked about */
    assert (bankapi_data_parse_day ("2026-11-21", &today));
    bankapi_delivery_t first, again, later;
    assert (bankapi_data_delivery ("CP482913374IE", today, &first));
    assert (bankapi_data_delivery ("CP482913374IE", today, &again));
    assert (bankapi_data_delivery ("CP482913374IE", today + 1, &later));
    assert (strcmp (first.status, again.status) == 0 && first.expected_day == again.expected_day);
    assert (later.expected_day == first.expected_day + 1 && strcmp (first.country, "IE") == 0);
    assert (strcmp (first.carrier, "An Post") == 0 && first.expected_day >= today);
    assert (!bankapi_data_delivery ("CP482913374", today, &first));
    /* every status comes up among the bank's numbers */
    int seen[3] = {0};
    for (int i = 0; i < 200; i++) {
        char tracking[16];
        snprintf (tracking, sizeof tracking, "CP%09dGB", i * 7919);
        bankapi_delivery_t parcel;
        assert (bankapi_data_delivery (tracking, today, &parcel));
        seen[0] += strcmp (parcel.status, "in_transit") == 0;
        seen[1] += strcmp (parcel.status, "out_for_delivery") == 0 && parcel.expected_day == today;
        seen[2] += strcmp (parcel.status, "delayed") == 0 && parcel.expected_day >= today + 5;
        assert (strcmp (parcel.carrier, "Royal Mail") == 0);
    }
    assert (seen[0] && seen[1] && seen[2] && seen[0] + seen[1] + seen[2] == 200);
    if (verbose)
        printf ("bankapi_data: ok\n");
}
