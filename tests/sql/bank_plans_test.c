/* The demo agent's SQL tools are index look-ups: each tool of deploy/config/bank-agent.yaml is
   planned (EXPLAIN (FORMAT JSON)) with representative parameters on a generated bank, and a plan
   that reads a table which grows with the bank (customers, accounts, cards, transactions,
   transfers, top-ups, refunds) with a sequential scan fails the test, naming the tool and
   printing the plan.

   The bank is generated here, in a database of the test's own (CONVEYOR_TEST_PG_URL, made by
   ctest from the pg fixture), at BANK_CUSTOMERS customers: large enough that the planner, left
   to its defaults, picks a sequential scan whenever no index serves the query, and small enough
   to generate in seconds. The planner is not steered (enable_seqscan stays on), so a pass means
   that the index path is the one chosen, not merely one that exists. Parameters are bound as the
   gatherer binds them (an unnamed statement, text values from the request's context, NULL for a
   slot the request lacks), so each plan is the custom plan a request gets; a tool that reads
   another's evidence gets that tool's rows, looked up first, and is not planned when a required
   input is missing, since the gatherer would not run it. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cv_alloc.h"
#include "cv_assert.h"
#include "cv_config.h"
#include "cv_pg.h"
#include "cv_template.h"
#include "gatherer_tools.h"

#ifndef CONVEYOR_SOURCE_DIR
#error "CONVEYOR_SOURCE_DIR must name the source tree (for the demo agent file)"
#endif

/* The bank's size and the customers whose requests are planned: cust-1 (the hand-written one)
   and one of the generated ones. */
#define BANK_CUSTOMERS 5000
static const char *const s_customers[] = {"cust-1", "cust-2500"};

/* Slot values a request may carry; each tool is planned with them and with no slots at all. */
static const char s_slots[] = "{\"card_last4\": \"4417\", \"currency\": \"GBP\", \"amount\": \"18.90\","
                              " \"country\": \"IE\", \"transaction_ref\": \"tx-1-1-7\", \"transfer_ref\": \"tr-1-1\"}";

/* The tables whose sequential scan fails a plan: they grow with the number of customers. */
static const char *const s_big_tables[] = {"customers", "accounts", "cards",  "transactions",
                                           "transfers", "topups",   "refunds"};

/* The big bank table that a plan node, or a node below it, reads with a sequential scan; NULL
   when there is none. */
static const char *
s_seq_scan (const json_t *node)
{
    const char *type = json_string_value (json_object_get (node, "Node Type"));
    const char *schema = json_string_value (json_object_get (node, "Schema"));
    const char *relation = json_string_value (json_object_get (node, "Relation Name"));
    if (type && strcmp (type, "Seq Scan") == 0 && schema && strcmp (schema, "bank") == 0 && relation)
        for (size_t i = 0; i < sizeof s_big_tables / sizeof s_big_tables[0]; i++)
            if (strcmp (relation, s_big_tables[i]) == 0)
                return relation;
    size_t index;
    const json_t *child;
    json_array_foreach (json_object_get (node, "Plans"), index, child) {
        const char *found = s_seq_scan (child);
        if (found)
            return found;
    }
    return NULL;
}

/* The big table the plan of sql (with count text params) reads sequentially, or NULL. Prints
   the plan, named by what, when there is one. */
static const char *
s_check (cv_pg_t *pg, const char *what, const char *sql, int count, const char *const *params)
{
    cv_error_t err;
    char *explain = cv_asprintf ("EXPLAIN (FORMAT JSON, VERBOSE) %s", sql);
    cv_pg_result_t *result = cv_pg_exec (pg, explain, count, params, &err);
    cv_assert_that (result, "bank plans: %s: cannot explain: %s", what, err.message);
    free (explain);
    json_error_t error;
    json_t *plan = json_loads (cv_pg_result_text (result, 0, 0), 0, &error);
    cv_assert_that (plan, "bank plans: %s: EXPLAIN gave no JSON: %s", what, error.text);
    cv_pg_result_destroy (&result);

    const char *found = s_seq_scan (json_object_get (json_array_get (plan, 0), "Plan"));
    if (found) {
        char *text = json_dumps (plan, JSON_INDENT (2));
        fprintf (stderr, "bank plans: %s reads bank.%s with a sequential scan:\n%s\n", what, found, text);
        free (text);
    }
    json_decref (plan);
    /* The name is one of s_big_tables, which outlive the plan. */
    return found;
}

/* Resolves tool's parameters from context as the gatherer does: text, NULL for a value the
   context lacks. Returns false when a required evidence input is missing (the gatherer would not
   run the tool). The caller frees params[0..param_count). */
static bool
s_params (const gatherer_tool_t *tool, const json_t *context, char **params)
{
    assert (tool->param_count <= CV_PARAMS_MAX);
    bool complete = true;
    for (size_t i = 0; i < tool->param_count; i++) {
        json_t *value = cv_template_lookup (context, tool->params[i]);
        params[i] = value && !json_is_null (value) ? cv_template_scalar_text (value) : NULL;
        if (!params[i] && tool->reads && tool->reads[i] && !tool->optional[i])
            complete = false;
    }
    return complete;
}

static void
s_params_free (const gatherer_tool_t *tool, char **params)
{
    for (size_t i = 0; i < tool->param_count; i++)
        free (params[i]);
}

/* Puts into context's evidence the rows of every tool that tool reads (each after its own
   inputs), run with the same context, in cv_context's shape: an array of row objects. */
static void
s_gather_inputs (cv_pg_t *pg, const gatherer_tools_t *tools, const gatherer_tool_t *tool, json_t *context)
{
    json_t *evidence = json_object_get (context, "evidence");
    assert (evidence);
    for (size_t i = 0; tool->reads && i < tool->param_count; i++) {
        if (!tool->reads[i] || json_object_get (evidence, tool->reads[i]))
            continue;
        const gatherer_tool_t *input = gatherer_tools_find (tools, tool->reads[i]);
        assert (input);
        s_gather_inputs (pg, tools, input, context);
        char *params[CV_PARAMS_MAX];
        json_t *rows = json_array ();
        if (s_params (input, context, params)) {
            char *sql = cv_asprintf ("SELECT coalesce(json_agg(q), '[]')::text FROM (%s) q", input->query);
            cv_error_t err;
            cv_pg_result_t *result = cv_pg_exec (pg, sql, (int) input->param_count, (const char *const *) params, &err);
            cv_assert_that (result, "bank plans: tool %s: %s", input->name, err.message);
            json_decref (rows);
            rows = json_loads (cv_pg_result_text (result, 0, 0), 0, NULL);
            assert (json_is_array (rows));
            cv_pg_result_destroy (&result);
            free (sql);
        }
        s_params_free (input, params);
        json_object_set_new (evidence, input->name, rows);
    }
}

/* Plans tool for the request context, its evidence inputs looked up first. Returns 0 when the
   plan reads no big table sequentially, -1 when it does, 1 when an input it needs is not there
   (the gatherer would not run it, so there is no plan to check). */
static int
s_check_tool (cv_pg_t *pg, const gatherer_tools_t *tools, const gatherer_tool_t *tool, json_t *context, bool verbose)
{
    s_gather_inputs (pg, tools, tool, context);
    char *params[CV_PARAMS_MAX];
    bool complete = s_params (tool, context, params);
    char *request = json_dumps (context, JSON_COMPACT);
    char *what = cv_asprintf ("tool %s for %s", tool->name, request);
    int rc = 1;
    if (complete)
        rc = s_check (pg, what, tool->query, (int) tool->param_count, (const char *const *) params) ? -1 : 0;
    if (verbose && rc == 0)
        printf ("ok - %s: no sequential scan of a big table\n", what);
    if (verbose && rc == 1)
        printf ("ok - %s: not run, an input is missing\n", what);
    free (what);
    free (request);
    s_params_free (tool, params);
    return rc;
}

int
main (int argc, char **argv)
{
    bool verbose = argc > 1 && strcmp (argv[1], "-v") == 0;
    const char *url = getenv ("CONVEYOR_TEST_PG_URL");
    cv_assert_that (url && *url, "bank plans: CONVEYOR_TEST_PG_URL is not set (ctest sets it from the pg fixture)");
    cv_error_t err;
    cv_pg_t *pg = cv_pg_new (url, "bank-plans-test", &err);
    cv_assert_that (pg, "bank plans: %s", err.message);

    /* A bank of its own, generated with fresh statistics (bank.generate analyzes). */
    char size[16];
    snprintf (size, sizeof size, "%d", BANK_CUSTOMERS);
    const char *generate[] = {size};
    cv_assert_that (cv_pg_run (pg, "SELECT bank.generate($1::integer, 42, '2026-01-15 12:00+00')", 1, generate, &err)
                        == 0,
                    "bank plans: bank.generate: %s", err.message);

    /* The check sees a sequential scan where there is one, in a subplan too. */
    assert (s_check (pg, "a full count (expected)", "SELECT count(*) FROM bank.transactions", 0, NULL));
    assert (s_check (pg, "a subquery (expected)",
                     "SELECT c.id FROM bank.customers c WHERE c.id = $1"
                     " AND EXISTS (SELECT 1 FROM bank.cards k WHERE k.last4 = '4417')",
                     1, (const char *const[]){"cust-1"}));
    assert (!s_check (pg, "a look-up by key", "SELECT name FROM bank.customers WHERE id = $1", 1,
                      (const char *const[]){"cust-1"}));

    cv_config_t *agent = cv_config_load (CONVEYOR_SOURCE_DIR "/deploy/config/bank-agent.yaml", &err);
    cv_assert_that (agent, "bank plans: %s", err.message);
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "bank plans: %s", err.message);

    json_t *slots = json_loads (s_slots, 0, NULL);
    assert (slots);
    cv_node_t *section = cv_node_get (cv_config_root (agent), "tools");
    size_t sql_tools = 0, checked = 0, failed = 0;
    for (size_t i = 0; i < cv_node_count (section); i++) {
        const gatherer_tool_t *tool = gatherer_tools_find (tools, cv_node_key (section, i));
        assert (tool);
        if (tool->kind != GATHERER_TOOL_SQL)
            continue;
        sql_tools++;
        size_t planned = 0;
        for (size_t c = 0; c < sizeof s_customers / sizeof s_customers[0]; c++)
            for (int with_slots = 0; with_slots < 2; with_slots++) {
                json_t *context = json_pack ("{s:s, s:s, s:{s:s, s:o}, s:{}}", "user_id", s_customers[c], "text",
                                             "hello", "intent", "name", "unknown", "slots",
                                             with_slots ? json_incref (slots) : json_object (), "evidence");
                int rc = s_check_tool (pg, tools, tool, context, verbose);
                failed += rc < 0 ? 1 : 0;
                planned += rc <= 0 ? 1 : 0;
                json_decref (context);
            }
        /* cust-1 has every row a tool's input looks for (0002's guarantees). */
        cv_assert_that (planned >= 2, "bank plans: tool %s was planned %zu times", tool->name, planned);
        checked += planned;
    }
    json_decref (slots);
    cv_assert_that (sql_tools > 0, "bank plans: the agent file has no SQL tool");
    cv_assert_that (failed == 0, "bank plans: %zu of %zu plans read a big table sequentially (above)", failed, checked);
    printf ("ok - bank plans: %zu plans of %zu SQL tools on a %d-customer bank, none reads a big table sequentially\n",
            checked, sql_tools, BANK_CUSTOMERS);

    gatherer_tools_destroy (&tools);
    cv_config_destroy (&agent);
    cv_pg_destroy (&pg);
    return 0;
}
