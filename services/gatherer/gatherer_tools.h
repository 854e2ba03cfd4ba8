/* The gatherer's tools and plans, read from the agent file: `tools` (what each tool runs) and
   `intents.NAME.tools` (which tools an intent's plan runs). Pure parsing and look-up, no I/O.

     tools:
       active_cards:
         kind: sql                    -- sql or kb_search
         query: SELECT ... $1 ...     -- required; one statement, parameters $1..$N
         params: [user_id, intent.slots.last4]   -- context paths for $1..$N (see cv_context.h)
         timeout_ms: 1000             -- 1..60000, default 1000
         max_rows: 5                  -- 1..1000, default 50; rows beyond it are dropped
       kb_answers:
         kind: kb_search              -- the knowledge base (gatherer_kb.h)
         query: text                  -- the context path of the search text, default text
         intent: intent.name          -- optional filter: a context path (dotted) or an intent name
         max_rows: 3                  -- default 3; timeout_ms as above
     intents:
       lost_or_stolen_card:
         tools: [customer_profile, active_cards]  -- each must be a tool above

   A kb_search tool is held as the SQL it runs: its statement in query, its parameters in params,
   and in fixed the texts of those that are not context paths (its row limit, an intent given by
   name). Errors name the file, the line and the key
   ("bank-agent.yaml:68: tools.cards.kind: ..."). */
#ifndef GATHERER_TOOLS_H
#define GATHERER_TOOLS_H

#include <stdbool.h>
#include <stddef.h>

#include "cv_config.h"
#include "cv_error.h"

#define GATHERER_TIMEOUT_MS_DEFAULT 1000
#define GATHERER_TIMEOUT_MS_MAX 60000
#define GATHERER_MAX_ROWS_DEFAULT 50
#define GATHERER_MAX_ROWS_MAX 1000
#define GATHERER_MAX_PARAMS 32

typedef enum { GATHERER_TOOL_SQL, GATHERER_TOOL_KB_SEARCH } gatherer_tool_kind_t;

/* One tool: plain data, owned by the gatherer_tools_t it came from. */
typedef struct {
    const char *name;
    gatherer_tool_kind_t kind;
    const char *query;
    const char *const *params; /* context paths for $1..$N */
    const char *const *fixed;  /* NULL, or per parameter: a text it is, or NULL (its path's value) */
    size_t param_count;
    int timeout_ms;
    int max_rows;
} gatherer_tool_t;

/* An intent's plan: the tools to run, in the order the agent file lists them. Borrowed. */
typedef struct {
    const gatherer_tool_t *const *tools;
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

/* The plan of intent name: empty for `unknown`, for an intent without tools and for a name the
   agent file does not know. Borrowed from self. */
gatherer_plan_t gatherer_tools_plan (const gatherer_tools_t *self, const char *intent);

/* The number of tools in the largest plan: how many run at once. */
size_t gatherer_tools_max_plan (const gatherer_tools_t *self);

void gatherer_tools_test (bool verbose);

#endif
