/* The bank API's misbehaviour per route, shared by its connection threads. */
#include "bankapi_faults.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_backoff.h"

struct _bankapi_faults_t {
    pthread_mutex_t lock;
    bankapi_fault_t faults[BANKAPI_ROUTE_COUNT];
    cv_backoff_rng_t rng; /* which requests fail */
};

static const char *s_routes[] = {"fx", "deliveries"};
static const char *s_modes[] = {"status", "hang", "close", "malformed", "oversized"};

static const bankapi_fault_t s_well_behaved = {.mode = BANKAPI_FAIL_STATUS, .status = 500};

bankapi_faults_t *
bankapi_faults_new (uint64_t seed)
{
    bankapi_faults_t *self = cv_calloc (1, sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    cv_backoff_seed (&self->rng, seed);
    bankapi_faults_reset (self);
    return self;
}

void
bankapi_faults_destroy (bankapi_faults_t **self_p)
{
    assert (self_p);
    bankapi_faults_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
bankapi_faults_set (bankapi_faults_t *self, bankapi_route_t route, const bankapi_fault_t *fault)
{
    assert (self && fault && route <= BANKAPI_ROUTE_COUNT);
    assert (fault->fail_rate <= 100 && fault->status >= 100 && fault->status <= 599);
    pthread_mutex_lock (&self->lock);
    for (int i = 0; i < BANKAPI_ROUTE_COUNT; i++)
        if (route == BANKAPI_ROUTE_COUNT || (int) route == i)
            self->faults[i] = *fault;
    pthread_mutex_unlock (&self->lock);
}

void
bankapi_faults_reset (bankapi_faults_t *self)
{
    bankapi_faults_set (self, BANKAPI_ROUTE_COUNT, &s_well_behaved);
}

static json_t *
s_fault_json (const bankapi_fault_t *fault)
{
    return json_pack ("{s:I, s:I, s:s, s:I, s:s}", "delay_ms", (json_int_t) fault->delay_ms, "fail_rate",
                      (json_int_t) fault->fail_rate, "mode", bankapi_faults_mode_name (fault->mode), "status",
                      (json_int_t) fault->status, "retry_after", fault->retry_after);
}

json_t *
bankapi_faults_json (bankapi_faults_t *self)
{
    assert (self);
    json_t *all = json_object ();
    pthread_mutex_lock (&self->lock);
    for (int i = 0; i < BANKAPI_ROUTE_COUNT; i++)
        json_object_set_new (all, s_routes[i], s_fault_json (&self->faults[i]));
    pthread_mutex_unlock (&self->lock);
    return all;
}

/* An unsigned JSON integer of key in [min, max] into *out, when key is there. */
static int
s_unsigned (json_t *object, const char *key, unsigned min, unsigned max, unsigned *out, cv_error_t *err)
{
    json_t *value = json_object_get (object, key);
    if (!value)
        return 0;
    if (!json_is_integer (value) || json_integer_value (value) < min || json_integer_value (value) > max)
        return cv_error_set (err, CV_ERR_INVALID, key, "%s must be an integer in %u..%u", key, min, max);
    *out = (unsigned) json_integer_value (value);
    return 0;
}

int
bankapi_faults_set_json (bankapi_faults_t *self, const char *text, cv_error_t *err)
{
    assert (self && text);
    json_error_t parse;
    json_t *object = json_loads (text, 0, &parse);
    if (!json_is_object (object)) {
        json_decref (object);
        return cv_error_set (err, CV_ERR_MALFORMED, "", "a fault must be a JSON object");
    }
    static const char *keys[] = {"route", "delay_ms", "fail_rate", "mode", "status", "retry_after"};
    const char *key;
    json_t *value;
    int rc = 0;
    json_object_foreach (object, key, value) {
        size_t i = 0;
        while (i < sizeof keys / sizeof keys[0] && strcmp (keys[i], key) != 0)
            i++;
        if (i == sizeof keys / sizeof keys[0] && rc == 0)
            rc = cv_error_set (err, CV_ERR_INVALID, key, "unknown fault key %s", key);
    }
    bankapi_fault_t fault = s_well_behaved;
    const char *route_name = json_string_value (json_object_get (object, "route"));
    int route = route_name ? bankapi_faults_route_parse (route_name) : -1;
    if (rc == 0 && route < 0)
        rc = cv_error_set (err, CV_ERR_INVALID, "route", "route must be fx, deliveries or all");
    json_t *mode = json_object_get (object, "mode");
    if (rc == 0 && mode) {
        int parsed = json_is_string (mode) ? bankapi_faults_mode_parse (json_string_value (mode)) : -1;
        if (parsed < 0)
            rc = cv_error_set (err, CV_ERR_INVALID, "mode", "mode must be status, hang, close, malformed or oversized");
        fault.mode = (bankapi_fail_mode_t) (parsed < 0 ? 0 : parsed);
        fault.fail_rate = 100;
    }
    if (rc == 0)
        rc = s_unsigned (object, "delay_ms", 0, 600000, &fault.delay_ms, err);
    if (rc == 0)
        rc = s_unsigned (object, "fail_rate", 0, 100, &fault.fail_rate, err);
    if (rc == 0)
        rc = s_unsigned (object, "status", 100, 599, &fault.status, err);
    json_t *retry_after = json_object_get (object, "retry_after");
    if (rc == 0 && retry_after) {
        const char *text_value = json_string_value (retry_after);
        if (!text_value || strlen (text_value) >= sizeof fault.retry_after || strpbrk (text_value, "\r\n"))
            rc = cv_error_set (err, CV_ERR_INVALID, "retry_after", "retry_after must be a short one-line string");
        else
            snprintf (fault.retry_after, sizeof fault.retry_after, "%s", text_value);
    }
    if (rc == 0)
        bankapi_faults_set (self, (bankapi_route_t) route, &fault);
    json_decref (object);
    return rc;
}

bankapi_verdict_t
bankapi_faults_decide (bankapi_faults_t *self, bankapi_route_t route)
{
    assert (self && route < BANKAPI_ROUTE_COUNT);
    pthread_mutex_lock (&self->lock);
    bankapi_verdict_t verdict = {.delay_ms = self->faults[route].delay_ms, .fault = self->faults[route]};
    unsigned rate = self->faults[route].fail_rate;
    verdict.fail = rate >= 100 || (rate > 0 && cv_backoff_random (&self->rng) % 100 < rate);
    pthread_mutex_unlock (&self->lock);
    return verdict;
}

const char *
bankapi_faults_route_name (bankapi_route_t route)
{
    assert (route < BANKAPI_ROUTE_COUNT);
    return s_routes[route];
}

int
bankapi_faults_route_parse (const char *name)
{
    assert (name);
    if (strcmp (name, "all") == 0)
        return BANKAPI_ROUTE_COUNT;
    for (int i = 0; i < BANKAPI_ROUTE_COUNT; i++)
        if (strcmp (name, s_routes[i]) == 0)
            return i;
    return -1;
}

const char *
bankapi_faults_mode_name (bankapi_fail_mode_t mode)
{
    assert (mode <= BANKAPI_FAIL_OVERSIZED);
    return s_modes[mode];
}

int
bankapi_faults_mode_parse (const char *name)
{
    assert (name);
    for (int i = 0; i <= BANKAPI_FAIL_OVERSIZED; i++)
        if (strcmp (name, s_modes[i]) == 0)
            return i;
    return -1;
}

void
bankapi_faults_test (bool verbose)
{
    bankapi_faults_t *faults = bankapi_faults_new (42);
    bankapi_verdict_t verdict = bankapi_faults_decide (faults, BANKAPI_ROUTE_FX);
    assert (!verdict.fail && verdict.delay_ms == 0);

    /* one route only: a 429 with Retry-After after 20 ms; the other route is untouched */
    cv_error_t err = {0};
    int rc = bankapi_faults_set_json (
        faults, "{\"route\":\"fx\",\"mode\":\"status\",\"status\":429,\"retry_after\":\"2\",\"delay_ms\":20}", &err);
    cv_assert_that (rc == 0, "%s", err.message);
    verdict = bankapi_faults_decide (faults, BANKAPI_ROUTE_FX);
    assert (verdict.fail && verdict.delay_ms == 20 && verdict.fault.mode == BANKAPI_FAIL_STATUS);
    assert (verdict.fault.status == 429 && strcmp (verdict.fault.retry_after, "2") == 0);
    assert (!bankapi_faults_decide (faults, BANKAPI_ROUTE_DELIVERIES).fail);
    json_t *all = bankapi_faults_json (faults);
    assert (json_integer_value (json_object_get (json_object_get (all, "fx"), "status")) == 429);
    assert (json_integer_value (json_object_get (json_object_get (all, "deliveries"), "fail_rate")) == 0);
    json_decref (all);

    /* a rate fails about that share, the same ones for the same seed */
    assert (bankapi_faults_set_json (faults, "{\"route\":\"all\",\"mode\":\"close\",\"fail_rate\":30}", &err) == 0);
    bankapi_faults_t *twin = bankapi_faults_new (42);
    bankapi_fault_t thirty = {.mode = BANKAPI_FAIL_CLOSE, .fail_rate = 30, .status = 500};
    bankapi_faults_set (twin, BANKAPI_ROUTE_COUNT, &thirty);
    int failed = 0;
    for (int i = 0; i < 1000; i++) {
        bankapi_verdict_t one = bankapi_faults_decide (faults, BANKAPI_ROUTE_DELIVERIES);
        assert (one.fail == bankapi_faults_decide (twin, BANKAPI_ROUTE_DELIVERIES).fail);
        failed += one.fail;
        assert (one.fault.mode == BANKAPI_FAIL_CLOSE);
    }
    cv_assert_that (failed > 200 && failed < 400, "%d of 1000 failed at 30 %%", failed);
    bankapi_faults_destroy (&twin);

    /* every mode by name; mistakes are refused and change nothing */
    for (int mode = 0; mode <= BANKAPI_FAIL_OVERSIZED; mode++)
        assert (bankapi_faults_mode_parse (bankapi_faults_mode_name ((bankapi_fail_mode_t) mode)) == mode);
    assert (bankapi_faults_route_parse ("deliveries") == BANKAPI_ROUTE_DELIVERIES
            && bankapi_faults_route_parse ("x") < 0);
    const char *bad[][2] = {{"[1]", "JSON object"},
                            {"{\"route\":\"fx\",\"colour\":1}", "unknown fault key colour"},
                            {"{\"mode\":\"hang\"}", "route must be"},
                            {"{\"route\":\"fx\",\"mode\":\"explode\"}", "mode must be"},
                            {"{\"route\":\"fx\",\"fail_rate\":101}", "fail_rate must be"},
                            {"{\"route\":\"fx\",\"status\":99}", "status must be"},
                            {"{\"route\":\"fx\",\"retry_after\":\"1\\r\\nX: y\"}", "retry_after must be"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert (bankapi_faults_set_json (faults, bad[i][0], &err) == -1);
        cv_assert_that (strstr (err.message, bad[i][1]), "%s: %s", bad[i][0], err.message);
    }
    assert (bankapi_faults_decide (faults, BANKAPI_ROUTE_FX).fault.mode == BANKAPI_FAIL_CLOSE);
    bankapi_faults_reset (faults);
    assert (!bankapi_faults_decide (faults, BANKAPI_ROUTE_FX).fail);
    assert (bankapi_faults_set_json (faults, "{\"route\":\"fx\",\"delay_ms\":5}", &err) == 0);
    verdict = bankapi_faults_decide (faults, BANKAPI_ROUTE_FX);
    assert (!verdict.fail && verdict.delay_ms == 5);
    bankapi_faults_destroy (&faults);
    bankapi_faults_destroy (&faults);
    if (verbose)
        printf ("bankapi_faults: ok\n");
}
