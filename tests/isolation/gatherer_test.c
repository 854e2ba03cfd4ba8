/* Isolation test of the gatherer worker: the real gatherer logic in a cv_worker, driven by the
   harness over real sockets, against the test fixture's PostgreSQL (the demo bank, cust-1's
   guaranteed rows, its knowledge base): good requests, a two-step plan, knowledge-base searches,
   a request without a plan, malformed and invalid traffic, probes, then plans of a small agent
   of its own (tools that overlap, inputs that time out), tools that are retried, stopped by
   their breaker or cached, and then PostgreSQL out of reach. Run
   from the source folder (ctest does). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_config.h"
#include "cv_context.h"
#include "cv_msgpack.h"
#include "cv_pg.h"
#include "cv_template.h"
#include "gatherer_server.h"
#include "gtest.h"
#include "harness.h"

/* Waits until the demo's largest SQL plan (card_arrival: three SQL tools at once, and its http
   tool, which finds no bank API here) comes back with every SQL tool OK: the pool's connections
   are then open. Their first opening counts against the demo tools' 1000 ms, which valgrind on a
   loaded machine can use up; a connection keeps opening when its tool gives up (cv_pgpool), so a
   later request finds it open. Not a timing: a condition. */
static void
s_warm_up (gtest_t *self)
{
    int64_t until = zclock_mono () + 30000;
    while (true) {
        cv_envelope_t *reply = gtest_gather (self, "cust-1", "Where is my card?", "card_arrival", NULL, 10000);
        bool ok = reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE && reply->evidence->n_results == 4;
        for (size_t i = 0; ok && i < reply->evidence->n_results; i++)
            ok = streq (reply->evidence->results[i]->tool, "delivery_status")
                 || reply->evidence->results[i]->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK;
        cv_envelope_destroy (&reply);
        if (ok)
            return;
        cv_assert_that (zclock_mono () < until, "the gatherer's tools did not answer within 30 s");
    }
}

/* Asks for intent's plan, the knowledge base's kb_answers, with text; asserts the search is OK
   and finds slug first, with its title and a snippet (NULL: finds nothing). */
static void
s_expect_article (gtest_t *gatherer, const char *text, const char *intent, const char *slug)
{
    const char *kb[] = {"kb_answers"};
    cv_envelope_t *reply = gtest_gather (gatherer, "cust-1", text, intent, NULL, 10000);
    json_t *context = gtest_evidence (reply, kb, 1);
    gtest_expect_text (context, "tools.kb_answers.status", "ok");
    if (slug) {
        gtest_expect_text (context, "evidence.kb_answers.0.slug", slug);
        assert (json_is_string (cv_template_lookup (context, "evidence.kb_answers.0.title")));
        const char *snippet = json_string_value (cv_template_lookup (context, "evidence.kb_answers.0.snippet"));
        assert (snippet && *snippet);
        assert (atof (json_string_value (cv_template_lookup (context, "evidence.kb_answers.0.rank"))) > 0);
    } else
        gtest_expect_rows (context, "kb_answers", 0);
    json_decref (context);
    cv_envelope_destroy (&reply);
}

static void
s_good_traffic (gtest_t *gatherer)
{
    /* a lost card: who the customer is and which cards are active */
    const char *lost[] = {"customer_profile", "active_cards"};
    cv_envelope_t *reply = gtest_gather (gatherer, "cust-1", "I lost my card", "lost_or_stolen_card", NULL, 10000);
    json_t *context = gtest_evidence (reply, lost, 2);
    gtest_expect_text (context, "tools.customer_profile.status", "ok");
    gtest_expect_text (context, "tools.active_cards.status", "ok");
    gtest_expect_rows (context, "customer_profile", 1);
    gtest_expect_text (context, "evidence.customer_profile.0.first_name", "Alex");
    gtest_expect_text (context, "evidence.customer_profile.0.country", "IE");
    gtest_expect_rows (context, "active_cards", 1);
    gtest_expect_text (context, "evidence.active_cards.0.id", "card-1-1");
    gtest_expect_text (context, "evidence.active_cards.0.last4", "4417");
    gtest_expect_text (context, "evidence.active_cards.0.status", "active");
    assert (reply->evidence->results[0]->elapsed_us > 0);
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* a slot narrows the query: the shipped card 9052 is not active */
    json_t *slots = json_pack ("{s:s}", "card_last4", "9052");
    reply = gtest_gather (gatherer, "cust-1", "I lost my card ending 9052", "lost_or_stolen_card", slots, 10000);
    context = gtest_evidence (reply, lost, 2);
    gtest_expect_text (context, "tools.active_cards.status", "ok");
    gtest_expect_rows (context, "active_cards", 0);
    json_decref (context);
    json_decref (slots);
    cv_envelope_destroy (&reply);

    /* charged twice: the Deliveroo duplicate */
    const char *twice[] = {"customer_profile", "duplicate_payments"};
    reply = gtest_gather (gatherer, "cust-1", "I was charged twice", "transaction_charged_twice", NULL, 10000);
    context = gtest_evidence (reply, twice, 2);
    gtest_expect_text (context, "evidence.duplicate_payments.0.merchant", "Deliveroo");
    gtest_expect_text (context, "evidence.duplicate_payments.0.amount", "18.90");
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* another customer gets their own rows, not cust-1's */
    reply = gtest_gather (gatherer, "cust-2", "I lost my card", "lost_or_stolen_card", NULL, 10000);
    context = gtest_evidence (reply, lost, 2);
    gtest_expect_rows (context, "customer_profile", 1);
    const char *name = json_string_value (cv_template_lookup (context, "evidence.customer_profile.0.name"));
    assert (name && !streq (name, "Alex Morgan"));
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* an intent the demo does not act on: the knowledge base, within the intent's articles */
    s_expect_article (gatherer, "How do I link my card?", "card_linking", "card-linking");
    s_expect_article (gatherer, "What is the minimum age for an account?", "age_limit", "age-limit");
    /* SQL in the text is only words to look for: nothing found for them, and no failure */
    s_expect_article (gatherer, "' OR 1=1; DROP TABLE bank.kb_articles; --", "age_limit", NULL);
    s_expect_article (gatherer, "\"link\" my 'card'; --", "card_linking", "card-linking");

    /* a two-step plan: card_payments reads the card active_cards found */
    const char *compromised[] = {"customer_profile", "active_cards", "card_payments"};
    reply = gtest_gather (gatherer, "cust-1", "someone is using my card", "compromised_card", NULL, 10000);
    context = gtest_evidence (reply, compromised, 3);
    gtest_expect_text (context, "tools.active_cards.status", "ok");
    gtest_expect_text (context, "tools.card_payments.status", "ok");
    gtest_expect_text (context, "evidence.active_cards.0.id", "card-1-1");
    gtest_expect_rows (context, "card_payments", 3);
    gtest_expect_text (context, "evidence.card_payments.0.merchant", "Uber"); /* tx-1-1-12, the latest on card-1-1 */
    gtest_expect_text (context, "evidence.card_payments.0.amount", "14.20");
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* its first step finds no card: the second does not run, says why, and the request is answered */
    slots = json_pack ("{s:s}", "card_last4", "9052");
    reply = gtest_gather (gatherer, "cust-1", "someone is using my card 9052", "compromised_card", slots, 10000);
    context = gtest_evidence (reply, compromised, 3);
    gtest_expect_text (context, "tools.customer_profile.status", "ok");
    gtest_expect_text (context, "tools.active_cards.status", "ok");
    gtest_expect_rows (context, "active_cards", 0);
    gtest_expect_text (context, "tools.card_payments.status", "failed");
    gtest_expect_text (context, "tools.card_payments.error",
                       "input evidence.active_cards.0.id: active_cards returned no rows");
    assert (!cv_template_lookup (context, "evidence.card_payments"));
    json_decref (context);
    json_decref (slots);
    cv_envelope_destroy (&reply);

    /* no plan: empty evidence */
    reply = gtest_gather (gatherer, "cust-1", "what is the meaning of life", "unknown", NULL, 10000);
    context = gtest_evidence (reply, NULL, 0);
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* a low-confidence guess is not acted on, so nothing is looked up for it */
    gatherer->low_confidence = true;
    reply = gtest_gather (gatherer, "cust-1", "I lost my card", "lost_or_stolen_card", NULL, 10000);
    context = gtest_evidence (reply, NULL, 0);
    json_decref (context);
    cv_envelope_destroy (&reply);
    gatherer->low_confidence = false;
}

/* A small agent of its own: tools that overlap, and inputs that fail, time out, or are optional. */
static const char *s_dag_agent =
    "intents:\n"
    "  overlap: {tools: [slow_a, slow_b, after_a]}\n"
    "  short: {tools: [hasty, after_hasty, optional_hasty]}\n"
    "  late: {tools: [sleepy, after_sleepy, after_after]}\n"
    "  optional: {tools: [slow_a, maybe]}\n"
    "tools:\n"
    "  slow_a: {kind: sql, query: \"SELECT pg_sleep(1)::text AS slept, 'a' AS id /* dag_overlap a */\", timeout_ms: "
    "10000}\n"
    "  slow_b: {kind: sql, query: \"SELECT pg_sleep(1)::text AS slept /* dag_overlap b */\", timeout_ms: 10000}\n"
    "  after_a:\n"
    "    kind: sql\n"
    "    query: >-\n"
    "      SELECT $1::text AS got, (SELECT count(*) FROM pg_stat_activity WHERE state = 'active'\n"
    "      AND query LIKE '%/* dag_overlap a */' AND pid <> pg_backend_pid ())::text AS running\n"
    "    params: [evidence.slow_a.0.id]\n"
    "  hasty: {kind: sql, query: 'SELECT pg_sleep(5)::text AS x', timeout_ms: 100}\n"
    "  after_hasty: {kind: sql, query: 'SELECT $1::text AS got', params: [evidence.hasty.0.x]}\n"
    "  optional_hasty: {kind: sql, query: 'SELECT $1::text AS got', params: [evidence.hasty.0.x?]}\n"
    "  sleepy: {kind: sql, query: 'SELECT pg_sleep(5)::text AS x', timeout_ms: 10000}\n"
    "  after_sleepy: {kind: sql, query: 'SELECT $1::text AS x', params: [evidence.sleepy.0.x]}\n"
    "  after_after: {kind: sql, query: 'SELECT $1::text AS x', params: [evidence.after_sleepy.0.x]}\n"
    "  maybe: {kind: sql, query: 'SELECT $1::text IS NULL AS was_null', params: [evidence.slow_a.0.nope?]}\n";

/* Statements of slow_a and slow_b running now, as PostgreSQL sees them. */
static int
s_overlapping (cv_pg_t *pg)
{
    cv_error_t err;
    cv_pg_result_t *result = cv_pg_exec (pg,
                                         "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                                         " AND query LIKE '%/* dag_overlap _ */' AND pid <> pg_backend_pid ()",
                                         0, NULL, &err);
    cv_assert_that (result, "%s", err.message);
    int count = (int) cv_pg_result_int (result, 0, 0);
    cv_pg_result_destroy (&result);
    return count;
}

static void
s_dag_traffic (const char *url)
{
    gtest_t *gatherer = gtest_start_with (url, s_dag_agent);

    /* two independent tools run at the same time (PostgreSQL sees both at once); the one that
       reads slow_a starts after it, with its value (slow_b, which it does not read, may still run) */
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, "gatherer-isolation-watch", &err);
    cv_assert_that (pg, "%s", err.message);
    cv_arena_t *arena = cv_arena_new ();
    harness_send (gatherer->harness, gtest_gather_request (gatherer, arena, "cust-1", "x", "overlap", NULL, 10000));
    int64_t until = zclock_mono () + 10000;
    while (s_overlapping (pg) < 2) {
        assert (zclock_mono () < until);
        zclock_sleep (10); /* polling PostgreSQL, which has no event to wait on */
    }
    cv_envelope_t *reply = harness_receive (gatherer->harness, 10000);
    assert (reply);
    cv_arena_destroy (&arena);
    cv_pg_destroy (&pg);
    const char *overlap[] = {"slow_a", "slow_b", "after_a"};
    json_t *context = gtest_evidence (reply, overlap, 3);
    gtest_expect_text (context, "tools.after_a.status", "ok");
    gtest_expect_text (context, "evidence.after_a.0.got", "a");
    gtest_expect_text (context, "evidence.after_a.0.running", "0"); /* slow_a was done */
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* an input that timed out: the tools that require it fail, saying so; an optional one
       still does not run on a tool that could not look */
    const char *hasty[] = {"hasty", "after_hasty", "optional_hasty"};
    reply = gtest_gather (gatherer, "cust-1", "x", "short", NULL, 10000);
    context = gtest_evidence (reply, hasty, 3);
    gtest_expect_text (context, "tools.hasty.status", "timed_out");
    gtest_expect_text (context, "tools.after_hasty.status", "failed");
    gtest_expect_text (context, "tools.after_hasty.error", "input evidence.hasty.0.x: hasty timed out");
    gtest_expect_text (context, "tools.optional_hasty.status", "failed");
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* an optional input that finds nothing goes as NULL */
    const char *optional[] = {"slow_a", "maybe"};
    reply = gtest_gather (gatherer, "cust-1", "x", "optional", NULL, 10000);
    context = gtest_evidence (reply, optional, 2);
    gtest_expect_text (context, "tools.maybe.status", "ok");
    gtest_expect_text (context, "evidence.maybe.0.was_null", "t");
    json_decref (context);
    cv_envelope_destroy (&reply);

    /* the request's deadline comes while tools wait for their inputs: they are TIMED_OUT, and
       the Evidence still comes */
    reply = gtest_gather (gatherer, "cust-1", "x", "late", NULL, 1500);
    assert (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE && reply->evidence->n_results == 3);
    Conveyor__V1__ToolResult **results = reply->evidence->results;
    assert (results[0]->status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
    assert (strstr (results[0]->error, "the request's deadline came after"));
    for (size_t i = 1; i < 3; i++) {
        assert (results[i]->status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
        cv_assert_that (strstr (results[i]->error, "the request's deadline came while it waited for"), "%s",
                        results[i]->error);
    }
    assert (strstr (results[1]->error, "waited for sleepy (input evidence.sleepy.0.x)"));
    assert (strstr (results[2]->error, "waited for after_sleepy (input evidence.after_sleepy.0.x)"));
    /* a span for each tool, in the reply, children of the request's span, failed as it ended */
    assert (reply->n_spans == 3);
    for (size_t i = 0; i < 3; i++) {
        const Conveyor__V1__Span *span = reply->spans[i];
        char name[80];
        snprintf (name, sizeof name, "tool %s", results[i]->tool);
        cv_assert_that (streq (span->name, name) && streq (span->status, "timed_out") && span->error, "span %s %s",
                        span->name, span->status);
        assert (streq (span->parent_span_id, reply->spans[0]->parent_span_id) && strlen (span->parent_span_id) == 16);
    }
    cv_envelope_destroy (&reply);
    gtest_stop (&gatherer);
}

/* An agent whose tools are retried, have small breakers, or are cached. */
static const char *s_resilience_agent =
    "intents:\n"
    "  flaky: {tools: [flaky]}\n"
    "  fragile: {tools: [fragile]}\n"
    "  remembered: {tools: [remembered, shared, mine, wrong]}\n"
    "tools:\n"
    "  flaky:\n"
    "    kind: sql\n"
    "    query: \"SELECT pg_sleep(0.5)::text AS slept, 'ok' AS got /* resil_flaky */\"\n"
    "    timeout_ms: 10000\n"
    "    retries: {max_attempts: 4, base_ms: 10, cap_ms: 50}\n"
    "  fragile:\n"
    "    kind: sql\n"
    "    query: 'SELECT pg_sleep($1::float)::text AS slept'\n"
    "    params: [intent.slots.sleep]\n"
    "    timeout_ms: 100\n"
    "    breaker: {failures: 2, cooldown_ms: 300}\n"
    "  remembered:\n"
    "    kind: sql\n"
    "    query: 'SELECT random()::text AS r, $1::text AS last4'\n"
    "    params: [intent.slots.last4]\n"
    "    cache: {ttl_ms: 600000}\n"
    "  shared: {kind: sql, query: 'SELECT random()::text AS r', cache: {ttl_ms: 600000}, personal: false}\n"
    "  mine: {kind: sql, query: 'SELECT random()::text AS r', cache: {ttl_ms: 600000}}\n"
    "  wrong:\n"
    "    kind: sql\n"
    "    query: 'SELECT (1 / 0)::text AS never'\n"
    "    cache: {ttl_ms: 600000}\n"
    "    retries: {max_attempts: 3, base_ms: 1}\n"
    "    breaker: {failures: 1}\n";

/* The pid of a statement of the flaky tool running now, other than not_pid, or 0. */
static int
s_flaky_pid (cv_pg_t *pg, int not_pid)
{
    cv_error_t err;
    char not_text[16];
    snprintf (not_text, sizeof not_text, "%d", not_pid);
    const char *params[] = {not_text};
    cv_pg_result_t *result = cv_pg_exec (pg,
                                         "SELECT coalesce (max (pid), 0) FROM pg_stat_activity WHERE state = 'active'"
                                         " AND query LIKE '%/* resil_flaky */' AND pid <> pg_backend_pid ()"
                                         " AND pid <> $1::int",
                                         1, params, &err);
    cv_assert_that (result, "%s", err.message);
    int pid = (int) cv_pg_result_int (result, 0, 0);
    cv_pg_result_destroy (&result);
    return pid;
}

/* Waits for a flaky statement other than not_pid and ends its session, as an operator's
   pg_terminate_backend or a server restart would; returns its pid. */
static int
s_terminate_flaky (cv_pg_t *pg, int not_pid)
{
    int64_t until = zclock_mono () + 10000;
    int pid;
    while ((pid = s_flaky_pid (pg, not_pid)) == 0) {
        assert (zclock_mono () < until);
        zclock_sleep (10); /* polling PostgreSQL, which has no event to wait on */
    }
    char pid_text[16];
    snprintf (pid_text, sizeof pid_text, "%d", pid);
    const char *params[] = {pid_text};
    cv_error_t err;
    cv_pg_result_t *result = cv_pg_exec (pg, "SELECT pg_terminate_backend ($1::int)::text", 1, params, &err);
    cv_assert_that (result, "%s", err.message);
    cv_pg_result_destroy (&result);
    return pid;
}

/* The one tool of a reply, after validation. */
static const Conveyor__V1__ToolResult *
s_only (const cv_envelope_t *reply, const char *tool)
{
    const char *tools[] = {tool};
    json_decref (gtest_evidence (reply, tools, 1));
    return reply->evidence->results[0];
}

/* The reply to a request whose fragile tool sleeps that long (seconds, as text). */
static cv_envelope_t *
s_fragile (gtest_t *gatherer, const char *sleep)
{
    json_t *slots = json_pack ("{s:s}", "sleep", sleep);
    cv_envelope_t *reply = gtest_gather (gatherer, "cust-1", "x", "fragile", slots, 10000);
    json_decref (slots);
    return reply;
}

/* A request of user (with a last4 slot): the random() of remembered, shared and mine joined by
   '|' (malloc'd), and the reply in *reply_p. */
static char *
s_remembered (gtest_t *gatherer, const char *user, const char *last4, cv_envelope_t **reply_p)
{
    json_t *slots = json_pack ("{s:s}", "last4", last4);
    cv_envelope_t *reply = gtest_gather (gatherer, user, "x", "remembered", slots, 10000);
    json_decref (slots);
    const char *tools[] = {"remembered", "shared", "mine", "wrong"};
    json_t *context = gtest_evidence (reply, tools, 4);
    char *r = zsys_sprintf ("%s|%s|%s", json_string_value (cv_template_lookup (context, "evidence.remembered.0.r")),
                            json_string_value (cv_template_lookup (context, "evidence.shared.0.r")),
                            json_string_value (cv_template_lookup (context, "evidence.mine.0.r")));
    json_decref (context);
    *reply_p = reply;
    return r;
}

/* The random() of each cached tool in a reply of s_remembered, split. */
static void
s_split (char *values, char **parts)
{
    parts[0] = values;
    parts[1] = strchr (parts[0], '|');
    *parts[1]++ = '\0';
    parts[2] = strchr (parts[1], '|');
    *parts[2]++ = '\0';
}

static void
s_resilience_traffic (const char *url)
{
    gtest_t *gatherer = gtest_start_with (url, s_resilience_agent);
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, "gatherer-isolation-watch", &err);
    cv_assert_that (pg, "%s", err.message);

    /* retries: the session of a flaky statement is ended under it, twice; the connection
       failure is retried on a new connection, and the tool succeeds (a first connection opened
       before may be re-sent once by the pool unseen: at least two attempts either way) */
    cv_arena_t *arena = cv_arena_new ();
    harness_send (gatherer->harness, gtest_gather_request (gatherer, arena, "cust-1", "x", "flaky", NULL, 10000));
    int first = s_terminate_flaky (pg, 0);
    s_terminate_flaky (pg, first);
    cv_envelope_t *reply = harness_receive (gatherer->harness, 10000);
    assert (reply);
    cv_arena_destroy (&arena);
    const Conveyor__V1__ToolResult *result = s_only (reply, "flaky");
    cv_assert_that (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK, "flaky: %s", result->error);
    cv_assert_that (result->attempts >= 2 && result->attempts <= 4, "flaky: %u attempts", result->attempts);
    assert (!result->cached && !result->breaker_open);
    cv_envelope_destroy (&reply);

    /* a breaker: two timeouts open it; the next call fails at once without running; after the
       cool-down one trial goes, succeeds, and closes it */
    for (int i = 0; i < 2; i++) {
        reply = s_fragile (gatherer, "1");
        result = s_only (reply, "fragile");
        assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT);
        assert (result->attempts == 1 && !result->breaker_open);
        cv_envelope_destroy (&reply);
    }
    reply = s_fragile (gatherer, "0");
    result = s_only (reply, "fragile");
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
    assert (result->breaker_open && result->attempts == 0);
    cv_assert_that (strstr (result->error, "circuit breaker is open"), "%s", result->error);
    cv_envelope_destroy (&reply);
    int64_t until = zclock_mono () + 10000;
    while (true) {
        reply = s_fragile (gatherer, "0");
        result = s_only (reply, "fragile");
        if (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
            break;
        assert (result->breaker_open && zclock_mono () < until);
        cv_envelope_destroy (&reply);
        zclock_sleep (20); /* the cool-down has no event to wait on */
    }
    assert (result->attempts == 1 && !result->breaker_open);
    cv_envelope_destroy (&reply);
    reply = s_fragile (gatherer, "0");
    result = s_only (reply, "fragile");
    assert (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK && !result->breaker_open);
    cv_envelope_destroy (&reply);

    /* the cache: random() shows whether a statement ran. A second call is served from the
       cache, without attempts; a personal tool's result never goes to another user, a shared
       one's does; an SQL error is neither retried, nor cached, nor counted by the breaker */
    char *parts[3], *again[3], *other[3];
    char *first_values = s_remembered (gatherer, "cust-1", "4417", &reply);
    s_split (first_values, parts);
    for (size_t i = 0; i < 3; i++) {
        assert (!reply->evidence->results[i]->cached && reply->evidence->results[i]->attempts == 1);
        assert (strlen (parts[i]) > 0);
    }
    const Conveyor__V1__ToolResult *wrong = reply->evidence->results[3];
    assert (wrong->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && wrong->attempts == 1);
    assert (strstr (wrong->error, "(22012)"));
    cv_envelope_destroy (&reply);
    char *again_values = s_remembered (gatherer, "cust-1", "4417", &reply);
    s_split (again_values, again);
    for (size_t i = 0; i < 3; i++) {
        cv_assert_that (reply->evidence->results[i]->cached, "tool %zu not cached", i);
        assert (reply->evidence->results[i]->attempts == 0);
        assert (streq (again[i], parts[i]));
    }
    wrong = reply->evidence->results[3];
    assert (wrong->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED && !wrong->cached && !wrong->breaker_open);
    assert (wrong->attempts == 1);
    cv_envelope_destroy (&reply);
    char *other_values = s_remembered (gatherer, "cust-2", "4417", &reply);
    s_split (other_values, other);
    assert (!reply->evidence->results[0]->cached && !streq (other[0], parts[0])); /* personal */
    assert (reply->evidence->results[1]->cached && streq (other[1], parts[1]));   /* shared */
    assert (!reply->evidence->results[2]->cached && !streq (other[2], parts[2])); /* personal */
    cv_envelope_destroy (&reply);
    free (other_values);
    /* other parameters, another key */
    other_values = s_remembered (gatherer, "cust-1", "9052", &reply);
    s_split (other_values, other);
    assert (!reply->evidence->results[0]->cached && !streq (other[0], parts[0]));
    assert (reply->evidence->results[2]->cached && streq (other[2], parts[2]));
    cv_envelope_destroy (&reply);
    free (other_values);
    free (again_values);
    free (first_values);

    cv_pg_destroy (&pg);
    gtest_stop (&gatherer);
}

int
main (void)
{
    char *url = harness_pg_fixture_url ();
    /* the demo's http tools find no bank API (tests/isolation/gatherer_http_test.c has one) */
    char *nowhere = zsys_sprintf ("http://127.0.0.1:%d", harness_closed_port ());
    setenv ("CONVEYOR_BANKAPI_URL", nowhere, 1);
    zstr_free (&nowhere);
    /* the demo's tools, as the gatherer's read-only role (its own agents' tools, which watch
       their sessions in pg_stat_activity, connect as the fixture's owner) */
    char *reader = harness_pg_fixture_gatherer_url ();
    gtest_t *gatherer = gtest_start (reader);
    s_warm_up (gatherer);
    s_good_traffic (gatherer);
    gtest_expect_probe (gatherer, true, "canned check passed");

    /* a frame that is not an Envelope */
    cv_envelope_t *reply = harness_request_raw (gatherer->harness, "\x0a\xff\xff garbage", 12, 10000);
    harness_expect_error (reply, CV_ERR_MALFORMED, NULL, "not a conveyor.v1.Envelope");
    cv_envelope_destroy (&reply);

    /* a body the gatherer does not take */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *wrong = harness_envelope (arena, 10000);
    Conveyor__V1__IntentRequest *intent_request = cv_envelope_set_intent_request (wrong, arena);
    intent_request->user_id = "cust-1";
    intent_request->text = "I lost my card";
    reply = harness_request (gatherer->harness, wrong, 10000);
    harness_expect_error (reply, CV_ERR_WRONG_BODY, "body", "intent_request");
    cv_envelope_destroy (&reply);
    cv_arena_destroy (&arena);

    /* an over-long text, a bad user id, a passed deadline */
    char *long_text = cv_malloc (CV_TEXT_MAX_BYTES + 2);
    memset (long_text, 'x', CV_TEXT_MAX_BYTES + 1);
    long_text[CV_TEXT_MAX_BYTES + 1] = '\0';
    reply = gtest_gather (gatherer, "cust-1", long_text, "lost_or_stolen_card", NULL, 10000);
    harness_expect_error (reply, CV_ERR_INVALID, "gather_request.text", "over the limit");
    cv_envelope_destroy (&reply);
    free (long_text);
    reply = gtest_gather (gatherer, "cust-1'; DROP TABLE bank.cards; --", "I lost my card", "lost_or_stolen_card", NULL,
                          10000);
    harness_expect_error (reply, CV_ERR_INVALID, "gather_request.user_id", "character outside");
    cv_envelope_destroy (&reply);
    reply = gtest_gather (gatherer, "cust-1", "I lost my card", "lost_or_stolen_card", NULL, -10);
    harness_expect_error (reply, CV_ERR_DEADLINE_EXCEEDED, "deadline_ms", "deadline passed");
    cv_envelope_destroy (&reply);

    /* a diagnostic request runs its intent's plan as a pipeline request does; for an intent with
       no plan it is refused, naming the intent, where a pipeline request gets empty Evidence */
    gatherer->diagnostic = true;
    reply = gtest_gather (gatherer, "cust-1", "lost_or_stolen_card", "lost_or_stolen_card", NULL, 10000);
    json_decref (gtest_evidence (reply, (const char *const[]){"customer_profile", "active_cards"}, 2));
    cv_envelope_destroy (&reply);
    reply = gtest_gather (gatherer, "cust-1", "no_such_intent", "no_such_intent", NULL, 10000);
    harness_expect_error (reply, CV_ERR_INVALID, "gather_request.intent.name", "no tools for intent no_such_intent");
    cv_envelope_destroy (&reply);
    gatherer->diagnostic = false;
    reply = gtest_gather (gatherer, "cust-1", "no_such_intent", "no_such_intent", NULL, 10000);
    json_decref (gtest_evidence (reply, NULL, 0));
    cv_envelope_destroy (&reply);

    /* and it keeps serving */
    s_good_traffic (gatherer);
    gtest_expect_probe (gatherer, true, "canned check passed");
    gtest_stop (&gatherer);
    s_dag_traffic (url);
    s_resilience_traffic (url);

    /* PostgreSQL out of reach: the request still gets its Evidence, every tool FAILED with the
       reason; the probe says not ok */
    char *closed = zsys_sprintf ("postgresql://conveyor@127.0.0.1:%d/conveyor", harness_closed_port ());
    gatherer = gtest_start (closed);
    const char *lost[] = {"customer_profile", "active_cards"};
    reply = gtest_gather (gatherer, "cust-1", "I lost my card", "lost_or_stolen_card", NULL, 10000);
    json_t *context = gtest_evidence (reply, lost, 2);
    for (size_t i = 0; i < 2; i++) {
        assert (reply->evidence->results[i]->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED);
        assert (strstr (reply->evidence->results[i]->error, "postgresql connect failed"));
    }
    gtest_expect_text (context, "tools.active_cards.status", "failed");
    assert (!cv_template_lookup (context, "evidence.active_cards"));
    json_decref (context);
    cv_envelope_destroy (&reply);
    const char *kb[] = {"kb_answers"};
    reply = gtest_gather (gatherer, "cust-1", "How do I link my card?", "card_linking", NULL, 10000);
    context = gtest_evidence (reply, kb, 1);
    gtest_expect_text (context, "tools.kb_answers.status", "failed");
    json_decref (context);
    cv_envelope_destroy (&reply);
    gtest_expect_probe (gatherer, false, "canned kb_answers search failed"); /* the demo agent has a knowledge base */
    reply = gtest_gather (gatherer, "cust-1", "hello", "unknown", NULL, 10000);
    json_decref (gtest_evidence (reply, NULL, 0));
    cv_envelope_destroy (&reply);
    gtest_stop (&gatherer);

    zstr_free (&closed);
    free (reader);
    free (url);
    printf ("gatherer isolation: ok\n");
    return 0;
}
