/* Isolation test of the gatherer's database role: a gatherer worker connected as the fixture's
   conveyor_gatherer (deploy/sql/roles.sql), driven by the harness over real sockets, runs an
   agent of its own whose tools read the demo bank, as they should, and try what that role must
   never do: write the bank's tables, read conveyor's own. Each forbidden tool fails with the
   database's reason in the Evidence; the others, in the same plans, go on working. The session's
   read-only setting and the role's grants are two walls: a tool that takes the session out of
   read-only mode still meets the second. The probe's canned check, the knowledge base's search,
   passes as this role and fails as one that may not read the knowledge base. Run from the source
   folder (ctest does). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_assert.h"
#include "gtest.h"

/* One connection, so a tool that follows another in a plan runs on the same session. */
static const char *s_agent =
    "intents:\n"
    "  reads: {tools: [profile, answers]}\n"
    "  writes: {tools: [profile, insert, update, delete, requests, checkpoints]}\n"
    "  unlocked: {tools: [unlock, insert_unlocked, delete_unlocked, requests_unlocked]}\n"
    "tools:\n"
    "  profile: {kind: sql, query: 'SELECT name FROM bank.customers WHERE id = $1', params: [user_id]}\n"
    "  answers: {kind: kb_search, query: text, intent: intent.name, max_rows: 1}\n"
    "  insert:\n"
    "    kind: sql\n"
    "    query: \"INSERT INTO bank.customers (id, name, email, country) VALUES ('cust-x', 'X', 'x@x', 'IE')"
    " RETURNING id\"\n"
    "  update: {kind: sql, query: \"UPDATE bank.cards SET status = 'frozen' WHERE customer_id = $1 RETURNING id\","
    " params: [user_id]}\n"
    "  delete: {kind: sql, query: 'DELETE FROM bank.transactions WHERE id = $1 RETURNING id', params: [user_id]}\n"
    "  requests: {kind: sql, query: 'SELECT id FROM requests LIMIT 1'}\n"
    "  checkpoints: {kind: sql, query: 'SELECT request_id FROM checkpoints LIMIT 1'}\n"
    "  unlock: {kind: sql, query: \"SELECT set_config ('default_transaction_read_only', 'off', false) AS ro\"}\n"
    "  insert_unlocked:\n"
    "    kind: sql\n"
    "    query: \"INSERT INTO bank.refunds (id, transaction_id, amount, status) SELECT 'ref-x', id, 1, $1"
    " FROM bank.transactions LIMIT 1 RETURNING id\"\n"
    "    params: [evidence.unlock.0.ro]\n"
    "  delete_unlocked:\n"
    "    kind: sql\n"
    "    query: 'DELETE FROM bank.refunds WHERE status = $1 RETURNING id'\n"
    "    params: [evidence.unlock.0.ro]\n"
    "  requests_unlocked:\n"
    "    kind: sql\n"
    "    query: 'SELECT id, $1::text AS ro FROM requests LIMIT 1'\n"
    "    params: [evidence.unlock.0.ro]\n";

/* The Evidence for intent_name of cust-1 (the caller destroys the reply). */
static cv_envelope_t *
s_gather (gtest_t *gatherer, const char *intent_name, const char *text)
{
    cv_envelope_t *reply = gtest_gather (gatherer, "cust-1", text, intent_name, NULL, 20000);
    cv_assert_that (reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_EVIDENCE, "no Evidence for %s", intent_name);
    return reply;
}

/* The result of tool in reply. */
static const Conveyor__V1__ToolResult *
s_tool (const cv_envelope_t *reply, const char *tool)
{
    for (size_t i = 0; i < reply->evidence->n_results; i++)
        if (streq (reply->evidence->results[i]->tool, tool))
            return reply->evidence->results[i];
    cv_assert_that (false, "no result for %s", tool);
    return NULL;
}

static void
s_expect_ok (const cv_envelope_t *reply, const char *tool)
{
    const Conveyor__V1__ToolResult *result = s_tool (reply, tool);
    cv_assert_that (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK, "%s: %s", tool, result->error);
}

/* tool failed, and its error names the database's reason. */
static void
s_expect_refused (const cv_envelope_t *reply, const char *tool, const char *reason)
{
    const Conveyor__V1__ToolResult *result = s_tool (reply, tool);
    cv_assert_that (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED, "%s: not refused", tool);
    cv_assert_that (strstr (result->error, reason), "%s: %s, not %s", tool, result->error, reason);
    assert (result->attempts == 1); /* a refusal is the statement's fault: never retried */
}

int
main (void)
{
    char *url = harness_pg_fixture_gatherer_url ();
    gtest_t *gatherer = gtest_start_pooled (url, s_agent, "1");

    /* reading the bank works: SQL and the knowledge base */
    cv_envelope_t *reply = s_gather (gatherer, "reads", "How do I link my card?");
    s_expect_ok (reply, "profile");
    s_expect_ok (reply, "answers");
    cv_envelope_destroy (&reply);

    /* the session is read-only; conveyor's own tables are not the role's to read */
    reply = s_gather (gatherer, "writes", "x");
    s_expect_ok (reply, "profile");
    s_expect_refused (reply, "insert", "(25006): cannot execute INSERT in a read-only transaction");
    s_expect_refused (reply, "update", "(25006): cannot execute UPDATE in a read-only transaction");
    s_expect_refused (reply, "delete", "(25006): cannot execute DELETE in a read-only transaction");
    s_expect_refused (reply, "requests", "(42501): permission denied for table requests");
    s_expect_refused (reply, "checkpoints", "(42501): permission denied for table checkpoints");
    cv_envelope_destroy (&reply);

    /* a tool that turns the session's read-only default off (the tools after it run on the same
       connection) meets the role's grants: still no write, still no conveyor table */
    reply = s_gather (gatherer, "unlocked", "x");
    s_expect_ok (reply, "unlock");
    s_expect_refused (reply, "insert_unlocked", "(42501): permission denied for table refunds");
    s_expect_refused (reply, "delete_unlocked", "(42501): permission denied for table refunds");
    s_expect_refused (reply, "requests_unlocked", "(42501): permission denied for table requests");
    cv_envelope_destroy (&reply);

    /* and the gatherer goes on serving */
    reply = s_gather (gatherer, "reads", "How do I link my card?");
    s_expect_ok (reply, "profile");
    s_expect_ok (reply, "answers");
    cv_envelope_destroy (&reply);
    gtest_expect_probe (gatherer, true, "canned check passed");
    gtest_stop (&gatherer);
    free (url);

    /* the probe's canned check is the knowledge base's search as the gatherer's role: a gatherer
       connected as a role that may not read it (the executor's) is up but not ok, and says why */
    char *fixture = harness_pg_fixture_url ();
    char *executor = harness_pg_fixture_executor_url (fixture);
    gatherer = gtest_start_pooled (executor, s_agent, "1");
    gtest_expect_probe (gatherer, false, "canned answers search failed");
    gtest_expect_probe (gatherer, false, "permission denied for table kb_articles");
    gtest_stop (&gatherer);
    free (executor);
    free (fixture);
    printf ("gatherer role isolation: ok\n");
    return 0;
}
