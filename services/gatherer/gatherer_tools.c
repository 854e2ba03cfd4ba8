/* The gatherer's tools and plans, read from the agent file. */
#include "gatherer_tools.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_budget.h"
#include "cv_envelope.h"
#include "gatherer_kb.h"

/* A plan's inputs are bit sets of its tools. */
_Static_assert(CV_MAX_TOOL_RESULTS <= 32, "a plan's inputs are uint32_t bit sets");

typedef struct {
    char *intent;
    const gatherer_tool_t **tools; /* borrowed from self->tools */
    uint32_t *inputs;              /* per tool, the plan's tools it reads */
    size_t count;
} plan_t;

struct _gatherer_tools_t {
    gatherer_tool_t *tools;
    size_t tool_count;
    plan_t *plans;
    size_t plan_count;
    size_t max_plan;
    cv_node_t **params_nodes; /* per tool, its `params` (or NULL), while gatherer_tools_new runs */
};

static void
s_tool_free (gatherer_tool_t *tool)
{
    for (size_t i = 0; i < tool->param_count; i++) {
        free ((char *) tool->params[i]);
        free ((char *) tool->reads[i]);
        if (tool->fixed)
            free ((char *) tool->fixed[i]);
    }
    free ((char **) tool->params);
    free ((char **) tool->reads);
    free ((char **) tool->fixed);
    free ((bool *) tool->optional);
    free ((char *) tool->name);
    free ((char *) tool->query);
    gatherer_http_spec_destroy (&tool->http);
}

void
gatherer_tools_destroy (gatherer_tools_t **self_p)
{
    assert (self_p);
    gatherer_tools_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->tool_count; i++)
        s_tool_free (&self->tools[i]);
    for (size_t i = 0; i < self->plan_count; i++) {
        free (self->plans[i].intent);
        free (self->plans[i].tools);
        free (self->plans[i].inputs);
    }
    free (self->tools);
    free (self->plans);
    free (self->params_nodes);
    free (self);
    *self_p = NULL;
}

/* Adds a tool of kind that runs query (taken) with params (taken; their names, which the tool does
   not keep, freed); returns it for its kind's own fields. */
static gatherer_tool_t *
s_add_tool (gatherer_tools_t *self, const char *name, gatherer_tool_kind_t kind, char *query, cv_params_t *params,
            long timeout_ms, long max_rows)
{
    gatherer_tool_t *tool = &self->tools[self->tool_count];
    self->params_nodes[self->tool_count++] = params->node;
    tool->name = cv_strdup (name);
    tool->kind = kind;
    tool->query = query;
    tool->params = (const char *const *) params->paths;
    tool->reads = (const char *const *) params->reads;
    tool->optional = params->optional;
    tool->param_count = params->count;
    tool->timeout_ms = (int) timeout_ms;
    tool->max_rows = (int) max_rows;
    if (params->names)
        for (size_t i = 0; i < params->count; i++)
            free (params->names[i]);
    free (params->names);
    memset (params, 0, sizeof *params);
    return tool;
}

/* A kind: sql tool's query and params. */
static int
s_parse_sql (gatherer_tools_t *self, const cv_config_t *agent, const char *name, cv_node_t *node, const char *path,
             long timeout_ms, cv_error_t *err)
{
    const char *query = NULL;
    long max_rows = GATHERER_MAX_ROWS_DEFAULT;
    cv_params_t params;
    if (cv_config_string (agent, node, "query", path, true, &query, err)
        || cv_config_int (agent, node, "max_rows", path, 1, GATHERER_MAX_ROWS_MAX, &max_rows, err)
        || cv_params_parse (agent, node, path, false, &params, err))
        return -1;
    s_add_tool (self, name, GATHERER_TOOL_SQL, cv_strdup (query), &params, timeout_ms, max_rows);
    return 0;
}

/* A kind: kb_search tool: the path of its text, its intent filter and its row limit, held as
   the statement it runs (gatherer_kb.h) with those as its parameters. Its paths are the
   request's: it reads no other tool. */
static int
s_parse_kb (gatherer_tools_t *self, const cv_config_t *agent, const char *name, cv_node_t *node, const char *path,
            long timeout_ms, cv_error_t *err)
{
    const char *query = GATHERER_KB_QUERY_DEFAULT, *intent = NULL;
    long max_rows = GATHERER_KB_MAX_ROWS_DEFAULT;
    if (cv_config_string (agent, node, "query", path, false, &query, err)
        || cv_config_string (agent, node, "intent", path, false, &intent, err)
        || cv_config_int (agent, node, "max_rows", path, 1, GATHERER_MAX_ROWS_MAX, &max_rows, err))
        return -1;
    char key_path[CV_NAME_MAX_BYTES + 24];
    snprintf (key_path, sizeof key_path, "%s.query", path);
    if (!cv_params_valid_path (query))
        return cv_config_fail (agent, cv_node_get (node, "query"), key_path, err,
                               "'%s' is not a context path (parts of [A-Za-z0-9_] joined by dots)", query);
    if (cv_params_reads_evidence (query))
        return cv_config_fail (agent, cv_node_get (node, "query"), key_path, err,
                               "'%s': a kb_search reads the request, not another tool's evidence", query);
    /* A dotted value is where the context holds the intent; a plain one is the intent itself. */
    bool by_path = intent && strchr (intent, '.');
    snprintf (key_path, sizeof key_path, "%s.intent", path);
    if (by_path && !cv_params_valid_path (intent))
        return cv_config_fail (agent, cv_node_get (node, "intent"), key_path, err,
                               "'%s' is not a context path (parts of [A-Za-z0-9_] joined by dots)", intent);
    if (by_path && cv_params_reads_evidence (intent))
        return cv_config_fail (agent, cv_node_get (node, "intent"), key_path, err,
                               "'%s': a kb_search reads the request, not another tool's evidence", intent);
    if (intent && !by_path && !cv_name_valid (intent))
        return cv_config_fail (agent, cv_node_get (node, "intent"), key_path, err,
                               "'%s' is neither an intent name (" CV_NAME_CHARS ") nor a context path", intent);

    /* $1 the text, $2 the intent when filtered, last the row limit: fixed, as a named intent is */
    char limit[24];
    snprintf (limit, sizeof limit, "%ld", max_rows);
    const char *params[] = {query, intent ? intent : limit, limit};
    const char *fixed[] = {NULL, intent && by_path ? NULL : params[1], limit};
    size_t count = intent ? 3 : 2;
    char **copies = cv_calloc (count, sizeof (char *));
    char **texts = cv_calloc (count, sizeof (char *));
    for (size_t i = 0; i < count; i++) {
        copies[i] = cv_strdup (params[i]);
        texts[i] = fixed[i] ? cv_strdup (fixed[i]) : NULL;
    }
    gatherer_tool_t *tool = &self->tools[self->tool_count++];
    tool->name = cv_strdup (name);
    tool->kind = GATHERER_TOOL_KB_SEARCH;
    tool->query = cv_strdup (gatherer_kb_statement (intent != NULL));
    tool->params = (const char *const *) copies;
    tool->reads = cv_calloc (count, sizeof (char *));
    tool->optional = cv_calloc (count, sizeof (bool));
    tool->fixed = (const char *const *) texts;
    tool->param_count = count;
    tool->timeout_ms = (int) timeout_ms;
    tool->max_rows = (int) max_rows;
    return 0;
}

/* A kind: http tool: its parameters, named for the placeholders, and what it sends and keeps
   (gatherer_http_spec.h). */
static int
s_parse_http (gatherer_tools_t *self, const cv_config_t *agent, const char *name, cv_node_t *node, const char *path,
              long timeout_ms, cv_error_t *err)
{
    long max_rows = GATHERER_MAX_ROWS_DEFAULT;
    cv_params_t params;
    if (cv_config_int (agent, node, "max_rows", path, 1, GATHERER_MAX_ROWS_MAX, &max_rows, err)
        || cv_params_parse (agent, node, path, true, &params, err))
        return -1;
    gatherer_http_spec_t *http = gatherer_http_spec_parse (agent, node, path, &params, err);
    if (!http) {
        cv_params_free (&params);
        return -1;
    }
    char *query = cv_asprintf ("%s %s", http->method, http->url);
    gatherer_tool_t *tool = s_add_tool (self, name, GATHERER_TOOL_HTTP, query, &params, timeout_ms, max_rows);
    tool->http = http;
    return 0;
}

static int
s_parse_tool (gatherer_tools_t *self, const cv_config_t *agent, const char *name, cv_node_t *node, cv_error_t *err)
{
    /* each kind's own keys, then gatherer_resilience's */
    static const char *const sql_keys[] = {"kind",    "query",   "params", "timeout_ms", "max_rows", "cost",
                                           "retries", "breaker", "cache",  "personal",   NULL};
    static const char *const kb_keys[] = {"kind",    "query",   "intent", "timeout_ms", "max_rows", "cost",
                                          "retries", "breaker", "cache",  "personal",   NULL};
    static const char *const http_keys[] = {"kind",       "method", "url",     "params",   "headers",
                                            "body",       "keep",   "rows",    "max_rows", "max_response_bytes",
                                            "timeout_ms", "cost",   "retries", "breaker",  "cache",
                                            "personal",   NULL};
    static const struct {
        const char *name;
        gatherer_tool_kind_t kind;
        const char *const *keys;
    } kinds[] = {{"sql", GATHERER_TOOL_SQL, sql_keys},
                 {"kb_search", GATHERER_TOOL_KB_SEARCH, kb_keys},
                 {"http", GATHERER_TOOL_HTTP, http_keys}};
    char path[CV_NAME_MAX_BYTES + 16];
    snprintf (path, sizeof path, "tools.%s", name);
    if (!cv_name_valid (name))
        return cv_config_fail (agent, node, path, err, "a tool name is 1..%d of " CV_NAME_CHARS, CV_NAME_MAX_BYTES);
    if (!cv_node_is_map (node))
        return cv_config_fail (agent, node, path, err, "must be a map: the tool's kind and its keys");
    const char *kind_name = NULL;
    if (cv_config_string (agent, node, "kind", path, true, &kind_name, err))
        return -1;
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && strcmp (kinds[k].name, kind_name) != 0)
        k++;
    if (k == sizeof kinds / sizeof kinds[0]) {
        char kind_path[sizeof path + 8];
        snprintf (kind_path, sizeof kind_path, "%s.kind", path);
        return cv_config_fail (agent, cv_node_get (node, "kind"), kind_path, err,
                               "kind '%s' is not supported (sql, kb_search or http)", kind_name);
    }
    /* the keys a tool may have depend on its kind */
    if (cv_config_known_keys (agent, node, path, kinds[k].keys, err))
        return -1;
    long timeout_ms = GATHERER_TIMEOUT_MS_DEFAULT;
    double cost = 0;
    gatherer_resilience_t resilience;
    if (cv_config_int (agent, node, "timeout_ms", path, 1, GATHERER_TIMEOUT_MS_MAX, &timeout_ms, err)
        || cv_config_real (agent, node, "cost", path, 0, CV_BUDGET_MAX_UNITS, &cost, err)
        || gatherer_resilience_parse (agent, node, path, &resilience, err))
        return -1;
    int rc = -1;
    switch (kinds[k].kind) {
    case GATHERER_TOOL_SQL:
        rc = s_parse_sql (self, agent, name, node, path, timeout_ms, err);
        break;
    case GATHERER_TOOL_KB_SEARCH:
        rc = s_parse_kb (self, agent, name, node, path, timeout_ms, err);
        break;
    case GATHERER_TOOL_HTTP:
        rc = s_parse_http (self, agent, name, node, path, timeout_ms, err);
        break;
    }
    if (rc == 0) {
        self->tools[self->tool_count - 1].resilience = resilience;
        self->tools[self->tool_count - 1].cost_micros = cv_budget_micros (cost);
    }
    return rc;
}

/* Fails at the line of tool's param index, under its `params` key. */
static int __attribute__ ((format (printf, 6, 7)))
s_param_fail (const gatherer_tools_t *self, const cv_config_t *agent, const gatherer_tool_t *tool, size_t index,
              cv_error_t *err, const char *format, ...)
{
    char path[CV_NAME_MAX_BYTES + 16], message[300];
    snprintf (path, sizeof path, "tools.%s.params", tool->name);
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    cv_node_t *params = self->params_nodes[tool - self->tools];
    return cv_config_fail (agent, cv_params_item (params, index), path, err, "%s", message);
}

/* Every evidence path reads a tool that exists. */
static int
s_check_reads (const gatherer_tools_t *self, const cv_config_t *agent, cv_error_t *err)
{
    for (size_t i = 0; i < self->tool_count; i++) {
        const gatherer_tool_t *tool = &self->tools[i];
        for (size_t p = 0; p < tool->param_count; p++)
            if (tool->reads[p] && !gatherer_tools_find (self, tool->reads[p]))
                return s_param_fail (self, agent, tool, p, err, "'%s' reads no tool: there is no %s in tools",
                                     tool->params[p], tool->reads[p]);
    }
    return 0;
}

/* Depth-first from tool index at, with the tools on the way in path[0..depth); state is 0 for a
   tool not seen yet, 1 while on the way, 2 once every tool it reads is known to end. */
static int
s_visit (const gatherer_tools_t *self, const cv_config_t *agent, size_t at, char *state, size_t *path, size_t depth,
         cv_error_t *err)
{
    const gatherer_tool_t *tool = &self->tools[at];
    state[at] = 1;
    path[depth] = at;
    for (size_t p = 0; p < tool->param_count; p++) {
        if (!tool->reads[p])
            continue;
        size_t next = (size_t) (gatherer_tools_find (self, tool->reads[p]) - self->tools);
        if (state[next] == 1) {
            /* the cycle: from next, where it starts, along the way back to next */
            char cycle[1024] = "";
            size_t from = 0;
            while (path[from] != next)
                from++;
            for (size_t k = from; k <= depth; k++) {
                strncat (cycle, self->tools[path[k]].name, sizeof cycle - strlen (cycle) - 1);
                strncat (cycle, " -> ", sizeof cycle - strlen (cycle) - 1);
            }
            strncat (cycle, self->tools[next].name, sizeof cycle - strlen (cycle) - 1);
            return s_param_fail (self, agent, tool, p, err, "'%s' makes a cycle: %s", tool->params[p], cycle);
        }
        if (state[next] == 0 && s_visit (self, agent, next, state, path, depth + 1, err))
            return -1;
    }
    state[at] = 2;
    return 0;
}

/* No tool reads itself, directly or through others. */
static int
s_check_cycles (const gatherer_tools_t *self, const cv_config_t *agent, cv_error_t *err)
{
    size_t count = self->tool_count ? self->tool_count : 1;
    char *state = cv_calloc (count, 1);
    size_t *path = cv_calloc (count, sizeof *path);
    int rc = 0;
    for (size_t i = 0; i < self->tool_count && rc == 0; i++)
        if (state[i] == 0)
            rc = s_visit (self, agent, i, state, path, 0, err);
    free (state);
    free (path);
    return rc;
}

/* What each tool of plan waits for; fails when it reads a tool the plan does not run. */
static int
s_plan_inputs (const gatherer_tools_t *self, const cv_config_t *agent, plan_t *plan, cv_error_t *err)
{
    gatherer_plan_t view = {plan->tools, plan->inputs, plan->count};
    for (size_t i = 0; i < plan->count; i++) {
        const gatherer_tool_t *tool = plan->tools[i];
        for (size_t p = 0; p < tool->param_count; p++) {
            if (!tool->reads[p])
                continue;
            int input = gatherer_plan_index (view, tool->reads[p]);
            if (input < 0)
                return s_param_fail (self, agent, tool, p, err,
                                     "'%s' reads %s, which the plan of intents.%s does not run", tool->params[p],
                                     tool->reads[p], plan->intent);
            plan->inputs[i] |= (uint32_t) 1 << input;
        }
    }
    return 0;
}

static int
s_parse_plan (gatherer_tools_t *self, const cv_config_t *agent, const char *intent, cv_node_t *node, cv_error_t *err)
{
    char path[256];
    snprintf (path, sizeof path, "intents.%s.tools", intent);
    cv_node_t *list = cv_node_get (node, "tools");
    if (!list)
        return 0;
    if (!cv_node_is_list (list) && !cv_node_is_scalar (list))
        return cv_config_fail (agent, list, path, err, "must be a tool name or a list of tool names");
    size_t count = cv_node_is_list (list) ? cv_node_count (list) : 1;
    if (count > 0 && strcmp (intent, "unknown") == 0)
        return cv_config_fail (agent, list, path, err, "the unknown intent runs no tools");
    if (count > CV_MAX_TOOL_RESULTS)
        return cv_config_fail (agent, list, path, err, "%zu tools, over the limit of %d", count, CV_MAX_TOOL_RESULTS);

    plan_t *plan = &self->plans[self->plan_count++];
    plan->intent = cv_strdup (intent);
    plan->tools = cv_calloc (count ? count : 1, sizeof *plan->tools);
    plan->inputs = cv_calloc (count ? count : 1, sizeof *plan->inputs);
    for (size_t i = 0; i < count; i++) {
        cv_node_t *item = cv_node_is_list (list) ? cv_node_item (list, i) : list;
        const char *name = cv_node_text (item);
        if (!name)
            return cv_config_fail (agent, item, path, err, "item %zu must be a tool name", i + 1);
        const gatherer_tool_t *tool = gatherer_tools_find (self, name);
        if (!tool)
            return cv_config_fail (agent, item, path, err, "no tool named '%s' in tools", name);
        for (size_t j = 0; j < plan->count; j++)
            if (plan->tools[j] == tool)
                return cv_config_fail (agent, item, path, err, "'%s' is listed twice", name);
        plan->tools[plan->count++] = tool;
    }
    if (plan->count > self->max_plan)
        self->max_plan = plan->count;
    return s_plan_inputs (self, agent, plan, err);
}

gatherer_tools_t *
gatherer_tools_new (cv_config_t *agent, cv_error_t *err)
{
    assert (agent);
    cv_node_t *root = cv_config_root (agent);
    cv_node_t *tools = cv_node_get (root, "tools");
    cv_node_t *intents = cv_node_get (root, "intents");
    if (tools && !cv_node_is_map (tools)) {
        cv_config_fail (agent, tools, "tools", err, "must be a map of tool name to tool");
        return NULL;
    }
    if (intents && !cv_node_is_map (intents)) {
        cv_config_fail (agent, intents, "intents", err, "must be a map of intent name to intent");
        return NULL;
    }
    gatherer_tools_t *self = cv_calloc (1, sizeof *self);
    size_t tool_count = cv_node_count (tools), intent_count = cv_node_count (intents);
    self->tools = cv_calloc (tool_count ? tool_count : 1, sizeof *self->tools);
    self->plans = cv_calloc (intent_count ? intent_count : 1, sizeof *self->plans);
    self->params_nodes = cv_calloc (tool_count ? tool_count : 1, sizeof *self->params_nodes);

    for (size_t i = 0; i < tool_count; i++) {
        const char *name = cv_node_key (tools, i);
        if (!name || s_parse_tool (self, agent, name, cv_node_value (tools, i), err))
            goto failed;
    }
    if (s_check_reads (self, agent, err) || s_check_cycles (self, agent, err))
        goto failed;
    for (size_t i = 0; i < intent_count; i++) {
        const char *intent = cv_node_key (intents, i);
        cv_node_t *node = cv_node_value (intents, i);
        /* The intent worker checks the rest of an intent; a plan needs a map with `tools`. */
        if (intent && cv_node_is_map (node) && s_parse_plan (self, agent, intent, node, err))
            goto failed;
    }
    free (self->params_nodes); /* the agent file's, which may go now */
    self->params_nodes = NULL;
    return self;
failed:
    gatherer_tools_destroy (&self);
    return NULL;
}

const gatherer_tool_t *
gatherer_tools_find (const gatherer_tools_t *self, const char *name)
{
    assert (self && name);
    for (size_t i = 0; i < self->tool_count; i++)
        if (strcmp (self->tools[i].name, name) == 0)
            return &self->tools[i];
    return NULL;
}

const gatherer_tool_t *
gatherer_tools_tool (const gatherer_tools_t *self, size_t index)
{
    assert (self && index < self->tool_count);
    return &self->tools[index];
}

size_t
gatherer_tools_index (const gatherer_tools_t *self, const gatherer_tool_t *tool)
{
    assert (self && tool);
    /* compared as addresses: a tool made by hand is in no array of self's */
    uintptr_t at = (uintptr_t) tool, first = (uintptr_t) self->tools;
    if (at < first || at >= first + self->tool_count * sizeof *self->tools)
        return SIZE_MAX;
    return (at - first) / sizeof *self->tools;
}

size_t
gatherer_tools_count (const gatherer_tools_t *self)
{
    assert (self);
    return self->tool_count;
}

gatherer_plan_t
gatherer_tools_plan (const gatherer_tools_t *self, const char *intent)
{
    assert (self && intent);
    gatherer_plan_t plan = {NULL, NULL, 0};
    for (size_t i = 0; i < self->plan_count; i++)
        if (strcmp (self->plans[i].intent, intent) == 0) {
            plan.tools = self->plans[i].tools;
            plan.inputs = self->plans[i].inputs;
            plan.count = self->plans[i].count;
        }
    return plan;
}

bool
gatherer_tools_has_plan (const gatherer_tools_t *self, const char *intent)
{
    assert (self && intent);
    for (size_t i = 0; i < self->plan_count; i++)
        if (strcmp (self->plans[i].intent, intent) == 0)
            return true;
    return false;
}

int
gatherer_plan_index (gatherer_plan_t plan, const char *name)
{
    assert (name);
    for (size_t i = 0; i < plan.count; i++)
        if (strcmp (plan.tools[i]->name, name) == 0)
            return (int) i;
    return -1;
}

size_t
gatherer_tools_max_plan (const gatherer_tools_t *self)
{
    assert (self);
    return self->max_plan;
}

/*  --------------------------------------------------------------------------
    Self-test */

/* Parses text as an agent file; asserts it fails with a message holding expected. */
static void
s_expect_failure (const char *text, const char *expected)
{
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, &err);
    assert (agent);
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    cv_assert_that (!(tools || !strstr (err.message, expected)), "expected failure '%s', got %s", expected,
                    tools ? "success" : err.message);
    assert (err.code == CV_ERR_INVALID);
    cv_config_destroy (&agent);
}

void
gatherer_tools_test (bool verbose)
{
    const char *text = "intents:\n"                                                 /* 1 */
                       "  lost_or_stolen_card:\n"                                   /* 2 */
                       "    patterns: ['lost']\n"                                   /* 3 */
                       "    tools: [customer_profile, active_cards]\n"              /* 4 */
                       "  greeting:\n"                                              /* 5 */
                       "    patterns: ['hello']\n"                                  /* 6 */
                       "  rates:\n"                                                 /* 7 */
                       "    tools: exchange_rates\n"                                /* 8 */
                       "  unknown: {tools: []}\n"                                   /* 9 */
                       "tools:\n"                                                   /* 10 */
                       "  customer_profile:\n"                                      /* 11 */
                       "    kind: sql\n"                                            /* 12 */
                       "    query: SELECT name FROM bank.customers WHERE id = $1\n" /* 13 */
                       "    params: [user_id]\n"                                    /* 14 */
                       "  active_cards:\n"                                          /* 15 */
                       "    kind: sql\n"                                            /* 16 */
                       "    query: SELECT last4 FROM bank.cards WHERE customer_id = $1 AND $2::text IS NULL\n"
                       "    params: [user_id, intent.slots.last4]\n"       /* 18 */
                       "    timeout_ms: 250\n"                             /* 19 */
                       "    max_rows: 5\n"                                 /* 20 */
                       "    cost: 0.0025\n"                                /* 21 */
                       "  exchange_rates: {kind: sql, query: SELECT 1}\n"; /* 22 */
    cv_error_t err;
    cv_config_t *agent = cv_config_parse ("agent.yaml", text, &err);
    assert (agent);
    gatherer_tools_t *tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    /* Everything is copied: the agent file can go. */
    cv_config_destroy (&agent);
    assert (gatherer_tools_count (tools) == 3);
    assert (gatherer_tools_max_plan (tools) == 2);

    const gatherer_tool_t *cards = gatherer_tools_find (tools, "active_cards");
    assert (cards && cards->kind == GATHERER_TOOL_SQL);
    assert (strstr (cards->query, "bank.cards"));
    assert (cards->param_count == 2);
    assert (strcmp (cards->params[1], "intent.slots.last4") == 0);
    assert (cards->timeout_ms == 250 && cards->max_rows == 5);
    assert (cards->cost_micros == 2500); /* 0.0025 units a call */
    const gatherer_tool_t *rates = gatherer_tools_find (tools, "exchange_rates");
    assert (rates->timeout_ms == GATHERER_TIMEOUT_MS_DEFAULT && rates->max_rows == GATHERER_MAX_ROWS_DEFAULT);
    assert (rates->cost_micros == 0); /* free unless the file says otherwise */
    assert (rates->param_count == 0);
    assert (!gatherer_tools_find (tools, "nope"));
    /* every tool by index, and its protections: the defaults when the file says none */
    for (size_t i = 0; i < gatherer_tools_count (tools); i++)
        assert (gatherer_tools_index (tools, gatherer_tools_tool (tools, i)) == i);
    gatherer_tool_t by_hand = *rates;
    assert (gatherer_tools_index (tools, &by_hand) == SIZE_MAX);
    assert (rates->resilience.retries.max_attempts == 1 && rates->resilience.cache_ttl_ms == 0);
    assert (rates->resilience.breaker_failures == GATHERER_BREAKER_FAILURES_DEFAULT && rates->resilience.personal);

    gatherer_plan_t plan = gatherer_tools_plan (tools, "lost_or_stolen_card");
    assert (plan.count == 2);
    assert (strcmp (plan.tools[0]->name, "customer_profile") == 0);
    assert (plan.tools[1] == cards);
    plan = gatherer_tools_plan (tools, "rates"); /* a single name is a plan of one */
    assert (plan.count == 1 && plan.tools[0] == rates);
    assert (gatherer_tools_plan (tools, "greeting").count == 0);
    assert (gatherer_tools_plan (tools, "unknown").count == 0);
    assert (gatherer_tools_plan (tools, "never_heard_of").count == 0);
    assert (gatherer_tools_has_plan (tools, "lost_or_stolen_card") && gatherer_tools_has_plan (tools, "unknown"));
    assert (!gatherer_tools_has_plan (tools, "greeting") && !gatherer_tools_has_plan (tools, "never_heard_of"));
    gatherer_tools_destroy (&tools);
    assert (!tools);
    gatherer_tools_destroy (&tools);

    /* No tools and no intents at all: nothing to run, not an error. */
    agent = cv_config_parse ("agent.yaml", "agent: empty\n", &err);
    tools = gatherer_tools_new (agent, &err);
    assert (tools && gatherer_tools_count (tools) == 0 && gatherer_tools_max_plan (tools) == 0);
    assert (gatherer_tools_plan (tools, "anything").count == 0);
    gatherer_tools_destroy (&tools);
    cv_config_destroy (&agent);

    /* kb_search tools: held as the statement they run, with their parameters */
    agent =
        cv_config_parse ("agent.yaml",
                         "tools:\n"
                         "  kb: {kind: kb_search}\n"
                         "  kb_mine: {kind: kb_search, query: intent.slots.topic, intent: intent.name, max_rows: 2}\n"
                         "  kb_cards: {kind: kb_search, intent: card_arrival, timeout_ms: 300}\n",
                         &err);
    tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    cv_config_destroy (&agent);
    const gatherer_tool_t *kb = gatherer_tools_find (tools, "kb");
    assert (kb->kind == GATHERER_TOOL_KB_SEARCH && strcmp (kb->query, gatherer_kb_statement (false)) == 0);
    assert (kb->param_count == 2 && strcmp (kb->params[0], "text") == 0 && !kb->fixed[0]
            && strcmp (kb->fixed[1], "3") == 0);
    assert (kb->max_rows == GATHERER_KB_MAX_ROWS_DEFAULT && kb->timeout_ms == GATHERER_TIMEOUT_MS_DEFAULT);
    kb = gatherer_tools_find (tools, "kb_mine");
    assert (strcmp (kb->query, gatherer_kb_statement (true)) == 0 && kb->param_count == 3);
    assert (strcmp (kb->params[0], "intent.slots.topic") == 0 && strcmp (kb->params[1], "intent.name") == 0);
    assert (!kb->fixed[0] && !kb->fixed[1] && strcmp (kb->fixed[2], "2") == 0 && kb->max_rows == 2);
    kb = gatherer_tools_find (tools, "kb_cards");
    assert (strcmp (kb->query, gatherer_kb_statement (true)) == 0 && kb->param_count == 3);
    assert (!kb->fixed[0] && strcmp (kb->fixed[1], "card_arrival") == 0 && strcmp (kb->fixed[2], "3") == 0);
    assert (kb->timeout_ms == 300);
    gatherer_tools_destroy (&tools);

    /* Every kind may cost: whole units, fractions, nothing, and the most a cost may be. */
    agent = cv_config_parse ("agent.yaml",
                             "tools:\n"
                             "  kb: {kind: kb_search, cost: 0.000001}\n"
                             "  rates: {kind: http, url: 'http://h/rates', keep: {rate: rate}, cost: 2}\n"
                             "  free: {kind: sql, query: SELECT 1, cost: 0}\n"
                             "  dear: {kind: sql, query: SELECT 1, cost: 1000000}\n",
                             &err);
    tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    cv_config_destroy (&agent);
    assert (gatherer_tools_find (tools, "kb")->cost_micros == 1);
    assert (gatherer_tools_find (tools, "rates")->cost_micros == 2 * CV_BUDGET_MICROS_PER_UNIT);
    assert (gatherer_tools_find (tools, "free")->cost_micros == 0);
    assert (gatherer_tools_find (tools, "dear")->cost_micros == 1000000ULL * CV_BUDGET_MICROS_PER_UNIT);
    gatherer_tools_destroy (&tools);

    /* Every mistake names the file, the line and the key. */
    s_expect_failure ("tools:\n  cards:\n    kind: ftp\n    query: x\n",
                      "agent.yaml:3: tools.cards.kind: kind 'ftp' is not supported (sql, kb_search or http)");
    s_expect_failure ("tools:\n  cards:\n    kind: http\n    query: x\n",
                      "agent.yaml:4: tools.cards.query: unknown key");
    /* an http tool's named parameters take part in the plan as any: here, one it reads is missing */
    s_expect_failure ("tools:\n  parcel:\n    kind: http\n    url: 'http://h/{t}'\n"
                      "    params: {t: evidence.cards.0.tracking}\n    keep: {status: status}\n",
                      "agent.yaml:5: tools.parcel.params: 'evidence.cards.0.tracking' reads no tool");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    query: 'text..x'\n",
                      "agent.yaml:4: tools.kb.query: 'text..x' is not a context path");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    query: SELECT 1\n",
                      "agent.yaml:4: tools.kb.query: 'SELECT 1' is not a context path");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    intent: 'intent.'\n",
                      "agent.yaml:4: tools.kb.intent: 'intent.' is not a context path");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    intent: 'card arrival'\n",
                      "agent.yaml:4: tools.kb.intent: 'card arrival' is neither an intent name");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    intent: [a, b]\n",
                      "agent.yaml:4: tools.kb.intent: must be a string");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    params: [text]\n",
                      "agent.yaml:4: tools.kb.params: unknown key");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    max_rows: 0\n",
                      "agent.yaml:4: tools.kb.max_rows: must be 1..1000, not 0");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    timeout_ms: 60001\n",
                      "agent.yaml:4: tools.kb.timeout_ms: must be 1..60000, not 60001");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    intent: x\n",
                      "agent.yaml:5: tools.cards.intent: unknown key");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    query: evidence.cards.0.id\n",
                      "agent.yaml:4: tools.kb.query: 'evidence.cards.0.id': a kb_search reads the request");
    s_expect_failure ("tools:\n  cards:\n    query: SELECT 1\n", "agent.yaml:3: tools.cards.kind: is required");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    params: [user_id]\n",
                      "agent.yaml:3: tools.cards.query: is required");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: ''\n",
                      "agent.yaml:4: tools.cards.query: must not be empty");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    timeout_ms: 0\n",
                      "agent.yaml:5: tools.cards.timeout_ms: must be 1..60000, not 0");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    timeout_ms: 60001\n",
                      "agent.yaml:5: tools.cards.timeout_ms: must be 1..60000, not 60001");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    timeout_ms: soon\n",
                      "agent.yaml:5: tools.cards.timeout_ms: must be a whole number");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    max_rows: 1001\n",
                      "agent.yaml:5: tools.cards.max_rows: must be 1..1000, not 1001");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    cost: cheap\n",
                      "agent.yaml:5: tools.cards.cost: must be a number");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    cost: -0.001\n",
                      "agent.yaml:5: tools.cards.cost: must be 0..1e+06, not -0.001");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    cost: 2000000\n",
                      "agent.yaml:4: tools.kb.cost: must be 0..1e+06, not 2e+06");
    s_expect_failure ("tools:\n  rates:\n    kind: http\n    url: 'http://h/r'\n    keep: {a: a}\n    cost: [0.1]\n",
                      "agent.yaml:6: tools.rates.cost: must be a number");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    retry: 3\n",
                      "agent.yaml:5: tools.cards.retry: unknown key");
    /* retries, breaker, cache and personal are read by gatherer_resilience, for every kind */
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    retries: 3\n",
                      "agent.yaml:5: tools.cards.retries: must be a map");
    s_expect_failure ("tools:\n  kb:\n    kind: kb_search\n    cache: {ttl_ms: 0}\n",
                      "agent.yaml:4: tools.kb.cache.ttl_ms: must be 1..86400000, not 0");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    params: [user_id, 'intent..slots']\n",
                      "agent.yaml:5: tools.cards.params: 'intent..slots' is not a context path");
    s_expect_failure ("tools:\n  cards:\n    kind: sql\n    query: SELECT 1\n    params: [{a: b}]\n",
                      "agent.yaml:5: tools.cards.params: item 1 must be a context path");
    s_expect_failure ("tools:\n  'cards!':\n    kind: sql\n    query: SELECT 1\n",
                      "tools.cards!: a tool name is 1..64 of [A-Za-z0-9_.:-]");
    s_expect_failure ("tools:\n  cards: SELECT 1\n", "agent.yaml:2: tools.cards: must be a map");
    s_expect_failure ("tools: [a, b]\n", "agent.yaml:1: tools: must be a map");
    s_expect_failure ("tools:\n  cards: {kind: sql, query: SELECT 1}\n"
                      "intents:\n  lost:\n    tools:\n      - cards\n      - cadrs\n",
                      "agent.yaml:7: intents.lost.tools: no tool named 'cadrs' in tools");
    s_expect_failure ("tools:\n  cards: {kind: sql, query: SELECT 1}\nintents:\n  lost: {tools: [cards, cards]}\n",
                      "agent.yaml:4: intents.lost.tools: 'cards' is listed twice");
    s_expect_failure ("tools:\n  cards: {kind: sql, query: SELECT 1}\nintents:\n  lost: {tools: {a: cards}}\n",
                      "agent.yaml:4: intents.lost.tools: must be a tool name or a list of tool names");
    s_expect_failure ("tools:\n  cards: {kind: sql, query: SELECT 1}\nintents:\n  unknown: {tools: [cards]}\n",
                      "agent.yaml:4: intents.unknown.tools: the unknown intent runs no tools");

    /* A plan as a DAG: payments waits for cards and profile, listed before or after it. */
    text = "tools:\n"                                                   /* 1 */
           "  cards: {kind: sql, query: SELECT 1, params: [user_id]}\n" /* 2 */
           "  payments:\n"                                              /* 3 */
           "    kind: sql\n"                                            /* 4 */
           "    query: SELECT 2\n"                                      /* 5 */
           "    params:\n"                                              /* 6 */
           "      - user_id\n"                                          /* 7 */
           "      - evidence.cards.0.id\n"                              /* 8 */
           "      - evidence.profile.0.name?\n"                         /* 9 */
           "  profile: {kind: sql, query: SELECT 3}\n"                  /* 10 */
           "intents:\n"                                                 /* 11 */
           "  compromised: {tools: [payments, profile, cards]}\n"       /* 12 */
           "  lost: {tools: [cards]}\n";                                /* 13 */
    agent = cv_config_parse ("agent.yaml", text, &err);
    assert (agent);
    tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    cv_config_destroy (&agent);
    const gatherer_tool_t *payments = gatherer_tools_find (tools, "payments");
    assert (payments->param_count == 3);
    assert (!payments->reads[0] && !payments->optional[0]);
    assert (strcmp (payments->params[1], "evidence.cards.0.id") == 0 && strcmp (payments->reads[1], "cards") == 0);
    assert (!payments->optional[1]);
    assert (strcmp (payments->params[2], "evidence.profile.0.name") == 0
            && strcmp (payments->reads[2], "profile") == 0);
    assert (payments->optional[2]);
    plan = gatherer_tools_plan (tools, "compromised");
    assert (plan.count == 3);
    assert (gatherer_plan_index (plan, "payments") == 0 && gatherer_plan_index (plan, "cards") == 2);
    assert (gatherer_plan_index (plan, "nope") == -1);
    assert (plan.inputs[0] == ((1u << 1) | (1u << 2))); /* profile and cards */
    assert (plan.inputs[1] == 0 && plan.inputs[2] == 0);
    plan = gatherer_tools_plan (tools, "lost"); /* cards reads nothing, so it runs alone */
    assert (plan.count == 1 && plan.inputs[0] == 0);
    gatherer_tools_destroy (&tools);

    /* An input that is not there, a cycle, a plan without the tools its tools read: refused,
       at the offending parameter. */
    s_expect_failure ("tools:\n  a:\n    kind: sql\n    query: SELECT 1\n    params:\n      - user_id\n"
                      "      - evidence.nope.0.id\n",
                      "agent.yaml:7: tools.a.params: 'evidence.nope.0.id' reads no tool: there is no nope in tools");
    s_expect_failure ("tools:\n  a:\n    kind: sql\n    query: SELECT 1\n    params: [evidence.a.0.id]\n",
                      "agent.yaml:5: tools.a.params: 'evidence.a.0.id' makes a cycle: a -> a");
    s_expect_failure ("tools:\n  a: {kind: sql, query: SELECT 1, params: [evidence.b.0.id]}\n"
                      "  b: {kind: sql, query: SELECT 2, params: [user_id, evidence.a]}\n",
                      "agent.yaml:3: tools.b.params: 'evidence.a' makes a cycle: a -> b -> a");
    s_expect_failure ("tools:\n  a: {kind: sql, query: SELECT 1, params: [evidence.c.0.id]}\n"
                      "  b: {kind: sql, query: SELECT 2, params: [evidence.a.0.id]}\n"
                      "  c: {kind: sql, query: SELECT 3, params: [evidence.b.0.id]}\n",
                      "agent.yaml:3: tools.b.params: 'evidence.a.0.id' makes a cycle: a -> c -> b -> a");
    s_expect_failure ("tools:\n  cards: {kind: sql, query: SELECT 1}\n"
                      "  payments: {kind: sql, query: SELECT 2, params: [evidence.cards.0.id]}\n"
                      "intents:\n  lost: {tools: [payments]}\n",
                      "agent.yaml:3: tools.payments.params: 'evidence.cards.0.id' reads cards, which the plan of "
                      "intents.lost does not run");
    s_expect_failure ("tools:\n  a: {kind: sql, query: SELECT 1, params: [intent.slots.x?]}\n",
                      "agent.yaml:2: tools.a.params: 'intent.slots.x?': only an evidence path takes `?`");
    s_expect_failure ("tools:\n  a: {kind: sql, query: SELECT 1, params: evidence}\n",
                      "agent.yaml:2: tools.a.params: 'evidence' names no tool");

    /* The demo bank's agent file parses (ctest runs this from the source folder). */
    agent = cv_config_load ("deploy/config/bank-agent.yaml", &err);
    assert (agent);
    tools = gatherer_tools_new (agent, &err);
    cv_assert_that (tools, "%s", err.message);
    plan = gatherer_tools_plan (tools, "lost_or_stolen_card");
    assert (plan.count == 2 && strcmp (plan.tools[1]->name, "active_cards") == 0);
    assert (plan.inputs[0] == 0 && plan.inputs[1] == 0);
    plan = gatherer_tools_plan (tools, "compromised_card"); /* card_payments reads active_cards */
    assert (plan.count == 3 && strcmp (plan.tools[2]->name, "card_payments") == 0);
    assert (plan.inputs[0] == 0 && plan.inputs[1] == 0 && plan.inputs[2] == 1u << 1);
    assert (gatherer_tools_plan (tools, "unknown").count == 0);
    /* its own database is free; the calls to the bank's other systems cost */
    assert (gatherer_tools_find (tools, "active_cards")->cost_micros == 0);
    assert (gatherer_tools_find (tools, "delivery_status")->cost_micros == 1000);
    assert (gatherer_tools_find (tools, "fx_rate")->cost_micros == 1000);
    gatherer_tools_destroy (&tools);
    cv_config_destroy (&agent);
    if (verbose)
        printf ("gatherer_tools: ok\n");
}
