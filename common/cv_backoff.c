/* The retry schedule: exponential waits with full jitter, the deadline cut-off, what is
   retryable, and Retry-After read in both its forms. */
#include "cv_backoff.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

void
cv_backoff_seed (cv_backoff_rng_t *rng, uint64_t seed)
{
    assert (rng);
    rng->state = seed;
}

uint64_t
cv_backoff_random (cv_backoff_rng_t *rng)
{
    assert (rng);
    /* splitmix64: one add and two multiplies a draw, every seed fine, good enough to spread
       retries apart (not for secrets) */
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, ceiling]: the modulo's bias is below 2^-40 for any wait in ms a caller uses. */
static uint64_t
s_draw (cv_backoff_rng_t *rng, uint64_t ceiling)
{
    uint64_t bits = cv_backoff_random (rng);
    return ceiling == UINT64_MAX ? bits : bits % (ceiling + 1);
}

static void
s_check (const cv_backoff_t *schedule)
{
    assert (schedule);
    assert (schedule->max_attempts >= 1);
    assert (schedule->cap_ms >= schedule->base_ms);
}

uint64_t
cv_backoff_ceiling (const cv_backoff_t *schedule, unsigned retry)
{
    s_check (schedule);
    uint64_t ceiling = schedule->base_ms;
    /* Doubling stops at the cap, so it never overflows, and ends within 64 rounds. */
    for (unsigned i = 0; i < retry && ceiling > 0 && ceiling < schedule->cap_ms; i++)
        ceiling = ceiling > schedule->cap_ms / 2 ? schedule->cap_ms : ceiling * 2;
    return ceiling < schedule->cap_ms ? ceiling : schedule->cap_ms;
}

bool
cv_backoff_next (const cv_backoff_t *schedule, cv_backoff_rng_t *rng, unsigned attempts, int64_t retry_after_ms,
                 uint64_t remaining_ms, uint64_t *delay_ms)
{
    s_check (schedule);
    assert (rng && delay_ms);
    assert (attempts >= 1);
    assert (retry_after_ms >= 0 || retry_after_ms == CV_BACKOFF_NO_RETRY_AFTER);
    *delay_ms = 0;
    if (attempts >= schedule->max_attempts)
        return false;
    uint64_t delay =
        retry_after_ms >= 0 ? (uint64_t) retry_after_ms : s_draw (rng, cv_backoff_ceiling (schedule, attempts - 1));
    /* The attempt after the wait needs time of its own before the deadline. */
    if (delay >= remaining_ms)
        return false;
    *delay_ms = delay;
    return true;
}

bool
cv_backoff_retryable (cv_backoff_failure_t failure, int http_status)
{
    switch (failure) {
    case CV_BACKOFF_CONNECT:
    case CV_BACKOFF_TIMEOUT:
        return true;
    case CV_BACKOFF_HTTP:
        return http_status == 429 || (http_status >= 500 && http_status <= 599);
    }
    assert (false);
    return false;
}

const char *
cv_backoff_failure_name (cv_backoff_failure_t failure)
{
    switch (failure) {
    case CV_BACKOFF_CONNECT:
        return "connect";
    case CV_BACKOFF_TIMEOUT:
        return "timeout";
    case CV_BACKOFF_HTTP:
        return "http";
    }
    return "unknown";
}

static bool
s_space (char c)
{
    return c == ' ' || c == '\t';
}

int
cv_backoff_retry_after (const char *value, uint64_t now_ms, uint64_t *delay_ms)
{
    assert (value && delay_ms);
    while (s_space (*value))
        value++;
    if (isdigit ((unsigned char) *value)) {
        /* delta-seconds: digits only, and spaces after */
        uint64_t seconds = 0;
        const char *cursor = value;
        for (; isdigit ((unsigned char) *cursor); cursor++)
            if (seconds < CV_BACKOFF_RETRY_AFTER_MAX_S)
                seconds = seconds * 10 + (uint64_t) (*cursor - '0');
        while (s_space (*cursor))
            cursor++;
        if (*cursor)
            return -1;
        if (seconds > CV_BACKOFF_RETRY_AFTER_MAX_S)
            seconds = CV_BACKOFF_RETRY_AFTER_MAX_S;
        *delay_ms = seconds * 1000;
        return 0;
    }
    /* An HTTP-date starts with the day's name in each of its three forms; requiring a letter
       keeps curl's lenient reader off numbers that are not delta-seconds ("-5", "1.5"). */
    if (!isalpha ((unsigned char) *value))
        return -1;
    time_t date = curl_getdate (value, NULL);
    if (date < 0)
        return -1;
    uint64_t date_ms = (uint64_t) date * 1000;
    *delay_ms = date_ms > now_ms ? date_ms - now_ms : 0;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
   Self-test */

/* Draws many waits for each retry and checks each within [0, ceiling], and that they spread
   over the whole range (full jitter, not a fixed wait with noise). */
static void
s_test_bounds (void)
{
    cv_backoff_t schedule = {.base_ms = 100, .cap_ms = 5000, .max_attempts = 100};
    cv_backoff_rng_t rng;
    cv_backoff_seed (&rng, 42);
    for (unsigned retry = 0; retry < 12; retry++) {
        uint64_t ceiling = cv_backoff_ceiling (&schedule, retry);
        uint64_t expected = 100ULL << retry < 5000 ? 100ULL << retry : 5000;
        cv_assert_that (ceiling == expected, "retry %u: ceiling %llu, expected %llu", retry,
                        (unsigned long long) ceiling, (unsigned long long) expected);
        uint64_t low = UINT64_MAX, high = 0;
        for (int draw = 0; draw < 2000; draw++) {
            uint64_t delay;
            assert (cv_backoff_next (&schedule, &rng, retry + 1, CV_BACKOFF_NO_RETRY_AFTER, UINT64_MAX, &delay));
            cv_assert_that (delay <= ceiling, "retry %u: %llu above %llu", retry, (unsigned long long) delay,
                            (unsigned long long) ceiling);
            low = delay < low ? delay : low;
            high = delay > high ? delay : high;
        }
        cv_assert_that (low <= ceiling / 20 && high >= ceiling - ceiling / 20,
                        "retry %u: waits only in [%llu, %llu] of [0, %llu]", retry, (unsigned long long) low,
                        (unsigned long long) high, (unsigned long long) ceiling);
    }

    /* The cap holds for any retry, without overflow, and at the top of the range. */
    assert (cv_backoff_ceiling (&schedule, 63) == 5000);
    assert (cv_backoff_ceiling (&schedule, 64) == 5000);
    assert (cv_backoff_ceiling (&schedule, 4000000000U) == 5000);
    cv_backoff_t huge = {.base_ms = 3, .cap_ms = UINT64_MAX, .max_attempts = 2};
    assert (cv_backoff_ceiling (&huge, 0) == 3);
    assert (cv_backoff_ceiling (&huge, 10) == 3072);
    assert (cv_backoff_ceiling (&huge, 200) == UINT64_MAX);
    cv_backoff_t capped = {.base_ms = 700, .cap_ms = 1000, .max_attempts = 2};
    assert (cv_backoff_ceiling (&capped, 0) == 700);
    assert (cv_backoff_ceiling (&capped, 1) == 1000);
    /* A base of 0 retries at once; base equal to the cap draws under the cap every time. */
    cv_backoff_t eager = {.base_ms = 0, .cap_ms = 0, .max_attempts = 5};
    for (unsigned attempts = 1; attempts < 5; attempts++) {
        uint64_t delay = 1;
        assert (cv_backoff_next (&eager, &rng, attempts, CV_BACKOFF_NO_RETRY_AFTER, 1, &delay));
        assert (delay == 0);
    }
    cv_backoff_t flat = {.base_ms = 250, .cap_ms = 250, .max_attempts = 10};
    assert (cv_backoff_ceiling (&flat, 0) == 250 && cv_backoff_ceiling (&flat, 9) == 250);
}

/* The same seed gives the same waits; another seed others. */
static void
s_test_seed (void)
{
    cv_backoff_t schedule = {.base_ms = 50, .cap_ms = 60000, .max_attempts = 20};
    cv_backoff_rng_t one, two, other;
    cv_backoff_seed (&one, 7);
    cv_backoff_seed (&two, 7);
    cv_backoff_seed (&other, 8);
    int same_as_other = 0;
    for (unsigned attempts = 1; attempts < 20; attempts++) {
        uint64_t a, b, c;
        assert (cv_backoff_next (&schedule, &one, attempts, CV_BACKOFF_NO_RETRY_AFTER, UINT64_MAX, &a));
        assert (cv_backoff_next (&schedule, &two, attempts, CV_BACKOFF_NO_RETRY_AFTER, UINT64_MAX, &b));
        assert (cv_backoff_next (&schedule, &other, attempts, CV_BACKOFF_NO_RETRY_AFTER, UINT64_MAX, &c));
        cv_assert_that (a == b, "attempt %u: %llu then %llu for one seed", attempts, (unsigned long long) a,
                        (unsigned long long) b);
        same_as_other += a == c;
    }
    assert (same_as_other < 3);
    /* Re-seeding starts the sequence again. */
    cv_backoff_seed (&one, 123);
    uint64_t first = cv_backoff_random (&one);
    cv_backoff_random (&one);
    cv_backoff_seed (&one, 123);
    assert (cv_backoff_random (&one) == first);
}

/* The attempts run out, and a wait that would reach the deadline ends them too. */
static void
s_test_cutoff (void)
{
    cv_backoff_t schedule = {.base_ms = 100, .cap_ms = 1000, .max_attempts = 3};
    cv_backoff_rng_t rng;
    cv_backoff_seed (&rng, 1);
    uint64_t delay = 99;

    /* max_attempts counts the first attempt: two retries, then no more. */
    assert (cv_backoff_next (&schedule, &rng, 1, CV_BACKOFF_NO_RETRY_AFTER, 10000, &delay) && delay <= 100);
    assert (cv_backoff_next (&schedule, &rng, 2, CV_BACKOFF_NO_RETRY_AFTER, 10000, &delay) && delay <= 200);
    assert (!cv_backoff_next (&schedule, &rng, 3, CV_BACKOFF_NO_RETRY_AFTER, 10000, &delay) && delay == 0);
    assert (!cv_backoff_next (&schedule, &rng, 4, 0, 10000, &delay));
    cv_backoff_t once = {.base_ms = 100, .cap_ms = 1000, .max_attempts = 1};
    assert (!cv_backoff_next (&once, &rng, 1, CV_BACKOFF_NO_RETRY_AFTER, 10000, &delay));

    /* No time left: no retry, whatever the draw. Time beyond the ceiling: always one. */
    for (int draw = 0; draw < 500; draw++) {
        assert (!cv_backoff_next (&schedule, &rng, 1, CV_BACKOFF_NO_RETRY_AFTER, 0, &delay));
        assert (cv_backoff_next (&schedule, &rng, 2, CV_BACKOFF_NO_RETRY_AFTER, 201, &delay));
    }
    /* In between, a draw at or past the deadline ends the attempts, one below goes. */
    int went = 0, stopped = 0;
    for (int draw = 0; draw < 1000; draw++) {
        if (cv_backoff_next (&schedule, &rng, 2, CV_BACKOFF_NO_RETRY_AFTER, 100, &delay)) {
            assert (delay < 100);
            went++;
        } else {
            assert (delay == 0);
            stopped++;
        }
    }
    cv_assert_that (went > 300 && stopped > 300, "%d went, %d stopped", went, stopped);

    /* A Retry-After is the wait, above the schedule's cap too, as long as it fits. */
    assert (cv_backoff_next (&schedule, &rng, 1, 5000, 5001, &delay) && delay == 5000);
    assert (!cv_backoff_next (&schedule, &rng, 1, 5000, 5000, &delay) && delay == 0);
    assert (cv_backoff_next (&schedule, &rng, 2, 0, 1, &delay) && delay == 0);
    /* and it does not move the random source. */
    cv_backoff_rng_t before = rng;
    assert (cv_backoff_next (&schedule, &rng, 1, 10, 100, &delay));
    assert (rng.state == before.state);
}

static void
s_test_retryable (void)
{
    assert (cv_backoff_retryable (CV_BACKOFF_CONNECT, 0));
    assert (cv_backoff_retryable (CV_BACKOFF_TIMEOUT, 0));
    assert (cv_backoff_retryable (CV_BACKOFF_CONNECT, 404)); /* the status is the HTTP kind's only */
    for (int status = 100; status < 1000; status++) {
        bool expected = status == 429 || (status >= 500 && status <= 599);
        cv_assert_that (cv_backoff_retryable (CV_BACKOFF_HTTP, status) == expected, "HTTP %d", status);
    }
    assert (!cv_backoff_retryable (CV_BACKOFF_HTTP, 0));
    assert (!cv_backoff_retryable (CV_BACKOFF_HTTP, -1));
    assert (strcmp (cv_backoff_failure_name (CV_BACKOFF_CONNECT), "connect") == 0);
    assert (strcmp (cv_backoff_failure_name (CV_BACKOFF_TIMEOUT), "timeout") == 0);
    assert (strcmp (cv_backoff_failure_name (CV_BACKOFF_HTTP), "http") == 0);
}

static void
s_test_retry_after (void)
{
    const uint64_t now = 1445412480000ULL; /* Wed, 21 Oct 2015 07:28:00 GMT */
    uint64_t delay = 0;

    /* delta-seconds */
    assert (cv_backoff_retry_after ("120", now, &delay) == 0 && delay == 120000);
    assert (cv_backoff_retry_after ("0", now, &delay) == 0 && delay == 0);
    assert (cv_backoff_retry_after (" \t7 ", now, &delay) == 0 && delay == 7000);
    assert (cv_backoff_retry_after ("2147483647", now, &delay) == 0 && delay == 2147483647000ULL);
    assert (cv_backoff_retry_after ("99999999999999999999999999", now, &delay) == 0);
    assert (delay == CV_BACKOFF_RETRY_AFTER_MAX_S * 1000);

    /* HTTP-date: the preferred form and the two obsolete ones, all the same moment */
    assert (cv_backoff_retry_after ("Wed, 21 Oct 2015 07:28:30 GMT", now, &delay) == 0);
    cv_assert_that (delay == 30000, "IMF-fixdate: %llu", (unsigned long long) delay);
    assert (cv_backoff_retry_after ("Wednesday, 21-Oct-15 07:28:30 GMT", now, &delay) == 0 && delay == 30000);
    assert (cv_backoff_retry_after ("Wed Oct 21 07:28:30 2015", now, &delay) == 0 && delay == 30000);
    assert (cv_backoff_retry_after ("Wed, 21 Oct 2015 07:28:30 GMT", now + 250, &delay) == 0 && delay == 29750);
    /* a date already past, or now, waits nothing */
    assert (cv_backoff_retry_after ("Wed, 21 Oct 2015 07:27:00 GMT", now, &delay) == 0 && delay == 0);
    assert (cv_backoff_retry_after ("Wed, 21 Oct 2015 07:28:00 GMT", now, &delay) == 0 && delay == 0);

    /* neither form: -1, *delay_ms untouched */
    const char *bad[] = {"", "   ", "-5", "1.5", "12s", "+3", "soon", "Wed, 99 Oct 2015 07:28:00 GMT", "0x10", NULL};
    for (const char **value = bad; *value; value++) {
        delay = 4242;
        cv_assert_that (cv_backoff_retry_after (*value, now, &delay) == -1 && delay == 4242, "'%s' read as %llu",
                        *value, (unsigned long long) delay);
    }
}

void
cv_backoff_test (bool verbose)
{
    s_test_bounds ();
    s_test_seed ();
    s_test_cutoff ();
    s_test_retryable ();
    s_test_retry_after ();

    /* Usage: a call retried by the schedule, a server's Retry-After honoured on the way. */
    cv_backoff_t schedule = {.base_ms = 100, .cap_ms = 2000, .max_attempts = 4};
    cv_backoff_rng_t rng;
    cv_backoff_seed (&rng, 2026);
    uint64_t remaining = 10000, delay, waited = 0;
    unsigned attempts = 1;
    for (;; attempts++) {
        /* attempt number attempts fails: a 503 asking for 2 s, then timeouts */
        bool busy = attempts == 1;
        assert (cv_backoff_retryable (busy ? CV_BACKOFF_HTTP : CV_BACKOFF_TIMEOUT, 503));
        uint64_t asked = 0;
        if (busy)
            assert (cv_backoff_retry_after ("2", 0, &asked) == 0);
        if (!cv_backoff_next (&schedule, &rng, attempts, busy ? (int64_t) asked : CV_BACKOFF_NO_RETRY_AFTER, remaining,
                              &delay))
            break;
        if (busy)
            assert (delay == 2000);
        waited += delay;
        remaining -= delay + 10; /* the wait and the attempt's 10 ms */
    }
    assert (attempts == 4 && waited >= 2000 && waited <= 2000 + 200 + 400);
    if (verbose)
        printf ("cv_backoff: ok\n");
}
