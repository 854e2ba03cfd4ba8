/* Isolation test of the gatherer's http tools: the real gatherer worker, driven by the harness over
   real sockets, calling the demo bank's HTTP service (conveyor-bankapi's server, in process, on a
   port of its own) while that service is told to misbehave in each of its ways: slow, 500, 429
   with Retry-After, hanging, closing the connection, malformed or oversized JSON. Each behaves as
   its tool says (timeout, retries, the breaker opening and recovering), the request still gets
   its Evidence with the failure named, and a customer's text never leaves its URL segment. Tools
   that cost are held to the request's budget: what does not fit is never sent. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bankapi_server.h"
#include "cv_assert.h"
#include "cv_template.h"
#include "gtest.h"

static const char *s_agent =
    "intents:\n"
    "  shared_rate: {tools: [rate]}\n"
    "  track: {tools: [parcel]}\n"
    "  track_retried: {tools: [parcel_retried]}\n"
    "  fragile: {tools: [rate_fragile]}\n"
    "  priced: {tools: [parcel_priced, rate_priced]}\n"
    "  priced_chain: {tools: [parcel_priced, parcel_echo]}\n"
    "tools:\n"
    "  rate:\n"
    "    kind: http\n"
    "    url: '${GTEST_BANKAPI_URL}/v1/fx/EUR/{quote}'\n"
    "    params: {quote: intent.slots.currency}\n"
    "    keep: {rate: rate, quote: quote}\n"
    "    timeout_ms: 5000\n"
    "    cache: {ttl_ms: 60000}\n"
    "    personal: false\n"
    "  parcel:\n"
    "    kind: http\n"
    "    url: '${GTEST_BANKAPI_URL}/v1/deliveries/{tracking}'\n"
    "    params: {tracking: intent.slots.tracking}\n"
    "    keep: {status: status, carrier: carrier, expected: expected_date}\n"
    "    timeout_ms: 5000\n"
    "    cache: {ttl_ms: 60000}\n"
    "  parcel_retried:\n"
    "    kind: http\n"
    "    url: '${GTEST_BANKAPI_URL}/v1/deliveries/{tracking}'\n"
    "    params: {tracking: intent.slots.tracking}\n"
    "    keep: {status: status}\n"
    "    timeout_ms: 300\n"
    "    retries: {max_attempts: 3, base_ms: 1, cap_ms: 5}\n"
    "    breaker: {failures: 1000, rate: {min_calls: 100000, window_ms: 10000, percent: 100}}\n"
    "  rate_fragile:\n"
    "    kind: http\n"
    "    url: '${GTEST_BANKAPI_URL}/v1/fx/EUR/{quote}'\n"
    "    params: {quote: intent.slots.currency}\n"
    "    keep: {rate: rate}\n"
    "    timeout_ms: 5000\n"
    "    breaker: {failures: 2, cooldown_ms: 300}\n"
    "  parcel_priced:\n"
    "    kind: http\n"
    "    url: '${GTEST_BANKAPI_URL}/v1/deliveries/{tracking}'\n"
    "    params: {tracking: intent.slots.tracking}\n"
    "    keep: {status: status}\n"
    "    timeout_ms: 5000\n"
    "    cost: 0.002\n"
    "  rate_priced:\n"
    "    kind: http\n"
    "    url: '${GTEST_BANKAPI_URL}/v1/fx/EUR/{quote}'\n"
    "    params: {quote: intent.slots.currency}\n"
    "    keep: {rate: rate}\n"
    "    timeout_ms: 5000\n"
    "    cost: 0.002\n"
    "  parcel_echo:\n"
    "    kind: sql\n"
    "    query: SELECT $1::text AS status\n"
    "    params: [evidence.parcel_priced.0.status]\n";

#define TRACKING "CP482913374IE"

/* The one tool's result of asking intent with one slot, by user; the reply is the caller's. */
static const Conveyor__V1__ToolResult *
s_ask (gtest_t *gatherer, const char *user, const char *intent, const char *slot, const char *value,
       cv_envelope_t **reply)
{
    json_t *slots = value ? json_pack ("{s:s}", slot, value) : NULL;
    *reply = gtest_gather (gatherer, user, "x", intent, slots, 10000);
    json_decref (slots);
    cv_assert_that ((*reply)->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE && (*reply)->evidence->n_results == 1,
                    "%s: expected one tool's evidence", intent);
    return (*reply)->evidence->results[0];
}

/* Asks track_retried about tracking while the deliveries route has fault; asserts the tool's
   status, attempts and a phrase of its error. */
static void
s_expect_fault (gtest_t *gatherer, bankapi_server_t *bank, const bankapi_fault_t *fault, const char *tracking,
                Conveyor__V1__ToolResult__Status status, unsigned attempts, const char *error)
{
    bankapi_faults_reset (bankapi_server_faults (bank));
    if (fault)
        bankapi_faults_set (bankapi_server_faults (bank), BANKAPI_ROUTE_DELIVERIES, fault);
    cv_envelope_t *reply;
    const Conveyor__V1__ToolResult *result = s_ask (gatherer, "cust-1", "track_retried", "tracking", tracking, &reply);
    cv_assert_that (result->status == status && result->attempts == attempts && strstr (result->error, error),
                    "%s: expected status %d after %u attempts with '%s', got %d after %u: '%s'",
                    fault ? bankapi_faults_mode_name (fault->mode) : "no fault", status, attempts, error,
                    result->status, result->attempts, result->error);
    assert (!result->cached && !result->breaker_open);
    cv_envelope_destroy (&reply);
}

static void
s_answers_and_cache (gtest_t *gatherer)
{
    /* a parcel: the fields kept, as text */
    cv_envelope_t *reply;
    const Conveyor__V1__ToolResult *result = s_ask (gatherer, "cust-1", "track", "tracking", TRACKING, &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && result->attempts == 1 && !result->cached);
    json_t *context = gtest_evidence (reply, (const char *const[]){"parcel"}, 1);
    gtest_expect_rows (context, "parcel", 1);
    gtest_expect_text (context, "evidence.parcel.0.carrier", "An Post");
    gtest_expect_text (context, "evidence.parcel.0.status", "in_transit");
    assert (json_is_string (cv_template_lookup (context, "evidence.parcel.0.expected")));
    json_decref (context);
    cv_envelope_destroy (&reply);
    /* personal: cached for its user, never served to another */
    result = s_ask (gatherer, "cust-1", "track", "tracking", TRACKING, &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && result->cached && result->attempts == 0);
    cv_envelope_destroy (&reply);
    result = s_ask (gatherer, "cust-2", "track", "tracking", TRACKING, &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && !result->cached && result->attempts == 1);
    cv_envelope_destroy (&reply);
    /* shared: one customer's look-up serves the next */
    result = s_ask (gatherer, "cust-1", "shared_rate", "currency", "USD", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && !result->cached);
    context = gtest_evidence (reply, (const char *const[]){"rate"}, 1);
    gtest_expect_text (context, "evidence.rate.0.quote", "USD");
    assert (atof (json_string_value (cv_template_lookup (context, "evidence.rate.0.rate"))) > 0);
    json_decref (context);
    cv_envelope_destroy (&reply);
    result = s_ask (gatherer, "cust-2", "shared_rate", "currency", "USD", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && result->cached);
    cv_envelope_destroy (&reply);
    /* a currency the service does not quote: its 404, with its own message, not retried */
    result = s_ask (gatherer, "cust-1", "shared_rate", "currency", "XYZ", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result->attempts == 1);
    cv_assert_that (strstr (result->error, "answered HTTP 404"), "%s", result->error);
    cv_envelope_destroy (&reply);
}

static void
s_faults (gtest_t *gatherer, bankapi_server_t *bank)
{
    const Conveyor__V1__ToolResult__Status ok = CONVEYOR__V1__TOOL_RESULT__STATUS__OK,
                                           failed = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED,
                                           timed_out = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
    s_expect_fault (gatherer, bank, NULL, TRACKING, ok, 1, "");
    /* what a customer typed stays one path segment: no other route is reached */
    s_expect_fault (gatherer, bank, NULL, "../../fx/EUR/USD", failed, 1,
                    "answered HTTP 404: no parcel has that tracking number");
    s_expect_fault (gatherer, bank, NULL, "' OR 1=1 --", failed, 1, "answered HTTP 404");
    /* ... and never a dot segment, which libcurl would climb: refused, nothing sent */
    s_expect_fault (gatherer, bank, NULL, "..", failed, 0, "{tracking} cannot be '..'");
    /* a value the request does not have: the tool fails, naming it, and nothing is sent */
    s_expect_fault (gatherer, bank, NULL, NULL, failed, 0,
                    "no value for {tracking}: the request has no intent.slots.tracking");

    bankapi_fault_t fault = {.fail_rate = 100, .mode = BANKAPI_FAIL_STATUS, .status = 500};
    s_expect_fault (gatherer, bank, &fault, TRACKING, failed, 3, "answered HTTP 500: a failure asked for by the test");
    fault.status = 400; /* the tool's own mistake: the same request gets the same answer */
    s_expect_fault (gatherer, bank, &fault, TRACKING, failed, 1, "answered HTTP 400");
    /* 429 with Retry-After: each retry waits what the service asked for (1 s), not the tool's 1..5 ms */
    fault.status = 429;
    snprintf (fault.retry_after, sizeof fault.retry_after, "1");
    int64_t started = zclock_mono ();
    s_expect_fault (gatherer, bank, &fault, TRACKING, failed, 3, "answered HTTP 429");
    int64_t waited = zclock_mono () - started;
    cv_assert_that (waited >= 1900, "two retries after Retry-After: 1 took %lld ms", (long long) waited);
    fault = (bankapi_fault_t){.delay_ms = 2000, .status = 500};
    s_expect_fault (gatherer, bank, &fault, TRACKING, timed_out, 3, "timed out after 300 ms");
    fault = (bankapi_fault_t){.fail_rate = 100, .mode = BANKAPI_FAIL_HANG, .status = 500};
    s_expect_fault (gatherer, bank, &fault, TRACKING, timed_out, 3, "timed out after 300 ms");
    /* the request's deadline before the tool's timeout: timed out by it, and not tried again */
    bankapi_faults_set (bankapi_server_faults (bank), BANKAPI_ROUTE_DELIVERIES, &fault);
    json_t *slots = json_pack ("{s:s}", "tracking", TRACKING);
    cv_envelope_t *reply = gtest_gather (gatherer, "cust-1", "x", "track_retried", slots, 150);
    json_decref (slots);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE && reply->evidence->n_results == 1);
    const Conveyor__V1__ToolResult *late = reply->evidence->results[0];
    cv_assert_that (late->status == timed_out && late->attempts == 1
                        && strstr (late->error, "the request's deadline came"),
                    "a deadline before the timeout: %d after %u: %s", late->status, late->attempts, late->error);
    cv_envelope_destroy (&reply);
    fault.mode = BANKAPI_FAIL_CLOSE;
    s_expect_fault (gatherer, bank, &fault, TRACKING, failed, 3, "");
    /* what came back cannot be read: the same request would get it again */
    fault.mode = BANKAPI_FAIL_MALFORMED;
    s_expect_fault (gatherer, bank, &fault, TRACKING, failed, 1, "the answer is not JSON");
    fault.mode = BANKAPI_FAIL_OVERSIZED;
    s_expect_fault (gatherer, bank, &fault, TRACKING, failed, 1, "over");
    /* and once the service behaves again, so does the tool */
    s_expect_fault (gatherer, bank, NULL, TRACKING, ok, 1, "");
}

/* Waits out the fragile tool's open breaker without using its trial: a refused request says when
   the next trial may go ("next trial in N ms"), and the wait is that long. The breaker's own
   clock, not a guess. */
static void
s_wait_cool_down (gtest_t *gatherer)
{
    cv_envelope_t *reply;
    const Conveyor__V1__ToolResult *result = s_ask (gatherer, "cust-9", "fragile", "currency", "GBP", &reply);
    const char *next = strstr (result->error, "next trial in ");
    cv_assert_that (result->breaker_open && next, "expected the breaker open, got: %s", result->error);
    long long wait_ms = atoll (next + strlen ("next trial in "));
    cv_envelope_destroy (&reply);
    zclock_sleep ((int) wait_ms + 5);
}

static void
s_breaker (gtest_t *gatherer, bankapi_server_t *bank)
{
    bankapi_fault_t fault = {.fail_rate = 100, .mode = BANKAPI_FAIL_STATUS, .status = 503};
    bankapi_faults_set (bankapi_server_faults (bank), BANKAPI_ROUTE_FX, &fault);
    cv_envelope_t *reply;
    for (int i = 0; i < 2; i++) {
        const Conveyor__V1__ToolResult *result = s_ask (gatherer, "cust-1", "fragile", "currency", "GBP", &reply);
        assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && !result->breaker_open);
        assert (result->attempts == 1 && strstr (result->error, "answered HTTP 503"));
        cv_envelope_destroy (&reply);
    }
    /* two failures in a row open it: the tool fails at once, sending nothing */
    uint64_t sent = bankapi_server_requests (bank);
    const Conveyor__V1__ToolResult *result = s_ask (gatherer, "cust-2", "fragile", "currency", "GBP", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result->breaker_open);
    assert (result->attempts == 0 && strstr (result->error, "circuit breaker is open"));
    assert (bankapi_server_requests (bank) == sent);
    cv_envelope_destroy (&reply);
    /* after the cool-down, a request that cannot be made (no currency) fails on its own and leaves
       the trial alone: the next request is the trial, fails (the service still does) and reopens
       the breaker, so the one after is refused */
    s_wait_cool_down (gatherer);
    result = s_ask (gatherer, "cust-1", "fragile", "currency", NULL, &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && !result->breaker_open);
    assert (strstr (result->error, "no value for {quote}"));
    cv_envelope_destroy (&reply);
    result = s_ask (gatherer, "cust-1", "fragile", "currency", "GBP", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result->attempts == 1);
    assert (strstr (result->error, "answered HTTP 503"));
    cv_envelope_destroy (&reply);
    result = s_ask (gatherer, "cust-1", "fragile", "currency", "GBP", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result->breaker_open);
    cv_envelope_destroy (&reply);
    /* the service recovers; after the cool-down a trial call goes through and closes it */
    bankapi_faults_reset (bankapi_server_faults (bank));
    s_wait_cool_down (gatherer);
    result = s_ask (gatherer, "cust-1", "fragile", "currency", "GBP", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && !result->breaker_open);
    cv_envelope_destroy (&reply);
    result = s_ask (gatherer, "cust-2", "fragile", "currency", "GBP", &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && !result->breaker_open && result->attempts == 1);
    cv_envelope_destroy (&reply);
}

/* Asks intent about a parcel and a currency with a budget of budget_micros (-1: none). */
static cv_envelope_t *
s_ask_priced (gtest_t *gatherer, const char *intent, int64_t budget_micros)
{
    cv_arena_t *arena = cv_arena_new ();
    json_t *slots = json_pack ("{s:s, s:s}", "tracking", TRACKING, "currency", "USD");
    cv_envelope_t *request = gtest_gather_request (gatherer, arena, "cust-1", "x", intent, slots, 10000);
    json_decref (slots);
    Conveyor__V1__Budget budget = CONVEYOR__V1__BUDGET__INIT;
    if (budget_micros >= 0) {
        budget.cost_micros_left = (uint64_t) budget_micros;
        request->budget = &budget;
    }
    cv_envelope_t *reply = harness_request (gatherer->harness, request, 10000);
    assert (reply && streq (reply->message_id, request->message_id));
    cv_arena_destroy (&arena);
    return reply;
}

static void
s_budget (gtest_t *gatherer, bankapi_server_t *bank)
{
    const Conveyor__V1__ToolResult__Status ok = CONVEYOR__V1__TOOL_RESULT__STATUS__OK,
                                           over = CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET;
    const char *const priced[] = {"parcel_priced", "rate_priced"};
    bankapi_faults_reset (bankapi_server_faults (bank));

    /* without a budget both run, and each says what it cost */
    uint64_t sent = bankapi_server_requests (bank);
    cv_envelope_t *reply = s_ask_priced (gatherer, "priced", -1);
    json_t *context = gtest_evidence (reply, priced, 2);
    json_decref (context);
    for (size_t i = 0; i < 2; i++) {
        const Conveyor__V1__ToolResult *result = reply->evidence->results[i];
        cv_assert_that (result->status == ok && result->attempts == 1 && result->cost_micros == 2000,
                        "%s without a budget: status %d, %u attempt(s), cost %llu: %s", result->tool, result->status,
                        result->attempts, (unsigned long long) result->cost_micros, result->error);
    }
    assert (bankapi_server_requests (bank) == sent + 2);
    cv_envelope_destroy (&reply);

    /* exactly enough for both: both run */
    sent = bankapi_server_requests (bank);
    reply = s_ask_priced (gatherer, "priced", 4000);
    json_decref (gtest_evidence (reply, priced, 2));
    assert (reply->evidence->results[0]->status == ok && reply->evidence->results[1]->status == ok);
    assert (bankapi_server_requests (bank) == sent + 2);
    cv_envelope_destroy (&reply);

    /* enough for one: the first to start (the first in the plan) runs; the other is never sent */
    sent = bankapi_server_requests (bank);
    reply = s_ask_priced (gatherer, "priced", 3000);
    context = gtest_evidence (reply, priced, 2);
    gtest_expect_text (context, "evidence.parcel_priced.0.status", "in_transit");
    json_decref (context);
    const Conveyor__V1__ToolResult *paid = reply->evidence->results[0], *left = reply->evidence->results[1];
    assert (paid->status == ok && paid->attempts == 1 && paid->cost_micros == 2000);
    cv_assert_that (left->status == over && left->attempts == 0 && left->cost_micros == 0
                        && streq (left->error, "not run: costs 0.002000 a call, 0.001000 left of the request's budget"),
                    "rate_priced over the budget: status %d, %u attempt(s), cost %llu: %s", left->status,
                    left->attempts, (unsigned long long) left->cost_micros, left->error);
    assert (bankapi_server_requests (bank) == sent + 1);
    cv_envelope_destroy (&reply);

    /* a tool that reads one left undone does not run either, and says which input and why */
    sent = bankapi_server_requests (bank);
    reply = s_ask_priced (gatherer, "priced_chain", 1000);
    json_decref (gtest_evidence (reply, (const char *const[]){"parcel_priced", "parcel_echo"}, 2));
    assert (reply->evidence->results[0]->status == over && reply->evidence->results[0]->cost_micros == 0);
    const Conveyor__V1__ToolResult *echo = reply->evidence->results[1];
    cv_assert_that (echo->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && echo->attempts == 0
                        && streq (echo->error, "input evidence.parcel_priced.0.status: parcel_priced was left undone: "
                                               "its call did not fit the request's budget"),
                    "parcel_echo: status %d: %s", echo->status, echo->error);
    assert (bankapi_server_requests (bank) == sent);
    cv_envelope_destroy (&reply);
    /* ... and runs, for free, once its input did */
    reply = s_ask_priced (gatherer, "priced_chain", 2000);
    context = gtest_evidence (reply, (const char *const[]){"parcel_priced", "parcel_echo"}, 2);
    gtest_expect_text (context, "evidence.parcel_echo.0.status", "in_transit");
    json_decref (context);
    assert (reply->evidence->results[1]->status == ok && reply->evidence->results[1]->cost_micros == 0);
    cv_envelope_destroy (&reply);
}

int
main (void)
{
    cv_log_t *log = cv_log_new ("bankapi", "bankapi-isolation", false);
    bankapi_config_t config = {.http_address = "127.0.0.1", .as_of = "", .seed = 1, .log = log};
    cv_error_t err;
    bankapi_server_t *bank = bankapi_server_new (&config, &err);
    cv_assert_that (bank, "%s", err.message);
    char *bank_url = zsys_sprintf ("http://127.0.0.1:%d", bankapi_server_port (bank));
    setenv ("GTEST_BANKAPI_URL", bank_url, 1);

    char *url = harness_pg_fixture_url ();
    gtest_t *gatherer = gtest_start_with (url, s_agent);
    s_answers_and_cache (gatherer);
    s_faults (gatherer, bank);
    s_breaker (gatherer, bank);
    s_budget (gatherer, bank);
    gtest_expect_probe (gatherer, true, "canned check passed");
    gtest_stop (&gatherer);

    /* a service out of reach: each attempt fails on the connection, and the Evidence says so */
    bankapi_server_destroy (&bank);
    gatherer = gtest_start_with (url, s_agent);
    cv_envelope_t *reply;
    const Conveyor__V1__ToolResult *result = s_ask (gatherer, "cust-1", "track_retried", "tracking", TRACKING, &reply);
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && result->attempts == 3 && *result->error);
    cv_envelope_destroy (&reply);
    gtest_stop (&gatherer);

    zstr_free (&bank_url);
    free (url);
    cv_log_destroy (&log);
    printf ("gatherer http isolation: ok\n");
    return 0;
}
