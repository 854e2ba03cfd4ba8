/* The gatherer's tools and plans, read from the agent file: `tools` (what each tool runs) and
   `intents.NAME.tools` (which tools an intent's plan runs). Pure parsing and look-up, no I/O.

     tools:
       active_cards:
         kind: sql                    -- sql, kb_search or http (gatherer_http_spec.h)
         query: SELECT ... $1 ...     -- required; one statement, parameters $1..$N
         params: [user_id, intent.slots.last4]   -- context paths for $1..$N (see cv_context.h)
         timeout_ms: 1000             -- 1..60000, default 1000
         max_rows: 5                  -- 1..1000, default 50; rows beyond it are dropped
         cost: 0.002                  -- what a call costs, in the agent's cost unit (cv_budget.h):
                                         a real number 0..CV_BUDGET_MAX_UNITS, default 0 (free)
       kb_answers:
         kind: kb_search              -- the knowledge base (gatherer_kb.h)
         query: text                  -- the context path of the search text, default text
         intent: intent.name          -- optional filter: a context path (dotted) or an intent name
         max_rows: 3                  -- default 3; timeout_ms as above
       card_payments:
         kind: sql
         query: SELECT ... WHERE card_id = $1 ...
         params: [evidence.active_cards.0.id, user_id]  -- reads active_cards' first row
         retries: {max_attempts: 3, base_ms: 50, cap_ms: 1000}   -- default: no retry
         breaker: {failures: 5, rate: {min_calls: 20, window_ms: 10000, percent: 50},
                   cooldown_ms: 5000}   -- every tool has one; these are its defaults
         cache: {ttl_ms: 60000}       -- default: not cached
         personal: true               -- default: cached results are the user's only
     intents:
       lost_or_stolen_card:
         tools: [customer_profile, active_cards]  -- each must be a tool above
       compromised_card:
         tools: [active_cards, card_payments]     -- card_payments runs once active_cards is done

   Every kind takes cost, retries, breaker, cache and personal: retries, breaker, cache and personal
   are read and documented in gatherer_resilience.h and applied by gatherer_call.h, the same way
   for every kind; cost is charged by gatherer_call.h to the request's budget, once per attempt
   (a retry is a call too; a cached result is none).

   A plan is a small DAG. A parameter `evidence.TOOL...` reads the rows another tool of the same
   plan returned (cv_context's shape: an array of row objects), and so makes its tool wait for
   TOOL; the others start at once. A tool may read a tool listed after it. Such an input is
   required: when the path finds nothing (no rows, no such field, a null), or when TOOL failed or
   timed out, the tool does not run and is FAILED with the reason. A `?` after an evidence path
   (`evidence.active_cards.0.id?`) makes it optional: a value it does not find goes as SQL NULL,
   as a missing slot does; TOOL failing still stops the tool (no data and "could not look" stay
   apart). Every other path (user_id, text, intent.slots.X) is optional already and takes no `?`.

   Refused at start, naming the file, the line and the key: a reference to a tool that does not
   exist, a cycle (a tool reading itself, or a -> b -> a), and a plan that runs a tool without
   the tools it reads; the key is the offending parameter's ("bank-agent.yaml:68:
   tools.card_payments.params: ..."), as for every other mistake in a tool.

   A kb_search tool is held as the SQL it runs: its statement in query, its parameters in params,
   and in fixed the texts of those that are not context paths (its row limit, an intent given by
   name). Its paths are the request's (text, intent.name): it reads no other tool. */
#ifndef GATHERER_TOOLS_H
#define GATHERER_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_config.h"
#include "cv_error.h"
#include "gatherer_http_spec.h"
#include "cv_params.h"
#include "gatherer_resilience.h"

#define GATHERER_TIMEOUT_MS_DEFAULT 1000
#define GATHERER_TIMEOUT_MS_MAX 60000
#define GATHERER_MAX_ROWS_DEFAULT 50
#define GATHERER_MAX_ROWS_MAX 1000

typedef enum { GATHERER_TOOL_SQL, GATHERER_TOOL_KB_SEARCH, GATHERER_TOOL_HTTP } gatherer_tool_kind_t;

/* One tool: plain data, owned by the gatherer_tools_t it came from. */
typedef struct {
    const char *name;
    gatherer_tool_kind_t kind;
    const char *query;
    const char *const *params; /* context paths for $1..$N, without the `?` */
    const char *const *reads;  /* per param: the tool whose evidence it reads, or NULL; the array
                                  may be NULL when none does (a tool made by hand) */
    const bool *optional;      /* per param: marked `?`; NULL as reads */
    const char *const *fixed;  /* NULL, or per param: a text it is, or NULL (its path's value) */
    size_t param_count;
    int timeout_ms;
    int max_rows;
    uint64_t cost_micros;             /* what one attempt costs (cv_budget.h), 0 when free */
    gatherer_resilience_t resilience; /* retries, breaker, cache (gatherer_resilience.h) */
    gatherer_http_spec_t *http;       /* an http tool's request and answer, else NULL */
} gatherer_tool_t;

/* An intent's plan: the tools to run, in the order the agent file lists them (the Evidence's
   order), and what each waits for. Borrowed. */
typedef struct {
    const gatherer_tool_t *const *tools;
    const uint32_t *inputs; /* per tool: bit j set when it reads the evidence of tools[j] */
    size_t count;
} gatherer_plan_t;

typedef struct _gatherer_tools_t gatherer_tools_t;

/* Reads `tools` and the plans of `intents` from the agent file; NULL with err (file:line) when a
   tool or a plan is wrong. Copies what it keeps: agent may be destroyed afterwards. */
gatherer_tools_t *gatherer_tools_new (cv_config_t *agent, cv_error_t *err) CV_MUST_CHECK;
void gatherer_tools_destroy (gatherer_tools_t **self_p);

/* The tool named name, or NULL. */
const gatherer_tool_t *gatherer_tools_find (const gatherer_tools_t *self, const char *name);
size_t gatherer_tools_count (const gatherer_tools_t *self);
/* Tool index (< gatherer_tools_count), in the agent file's order. Borrowed from self. */
const gatherer_tool_t *gatherer_tools_tool (const gatherer_tools_t *self, size_t index);
/* The index of tool (one of self's) among self's tools, 0..count-1; SIZE_MAX for a tool that is
   not self's (one made by hand). */
size_t gatherer_tools_index (const gatherer_tools_t *self, const gatherer_tool_t *tool);

/* The plan of intent name: empty for `unknown`, for an intent without tools and for a name the
   agent file does not know. Borrowed from self. */
gatherer_plan_t gatherer_tools_plan (const gatherer_tools_t *self, const char *intent);

/* True when the agent file gives intent name a plan (a `tools` key, even an empty one). */
bool gatherer_tools_has_plan (const gatherer_tools_t *self, const char *intent);

/* The index in plan of the tool named name, or -1. */
int gatherer_plan_index (gatherer_plan_t plan, const char *name);

/* The number of tools in the largest plan: at most how many run at once. */
size_t gatherer_tools_max_plan (const gatherer_tools_t *self);

void gatherer_tools_test (bool verbose);

#endif
