/* One request's plan in flight on the gatherer's loop, and the Evidence it ends with. */
#include "gatherer_run.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_context.h"
#include "cv_trace.h"
#include "cv_msgpack.h"
#include "cv_template.h"
#include "cv_utf8.h"
#include "gatherer_call.h"
#include "gatherer_sql.h"

/* Room left in an Envelope for everything but the tools' rows. */
#define EVIDENCE_DATA_MAX_BYTES (CV_ENVELOPE_MAX_BYTES - 64 * 1024)

/* Where a tool of the plan is. */
typedef enum {
    TOOL_WAITING, /* for the results of the tools it reads */
    TOOL_RUNNING, /* on the pool */
    TOOL_DONE     /* its result is in: run, or stopped by its inputs */
} tool_state_t;

typedef struct {
    gatherer_run_t *run;
    size_t index;
    tool_state_t state;
    gatherer_call_t *call; /* while it runs */
} tool_slot_t;

struct _gatherer_run_t {
    zloop_t *loop;
    const gatherer_call_env_t *env;
    cv_worker_call_t *call;
    gatherer_plan_t plan;
    tool_slot_t tools[CV_MAX_TOOL_RESULTS];
    gatherer_result_t results[CV_MAX_TOOL_RESULTS];
    json_t *context; /* when some tool reads another: the request's, with evidence.TOOL of the
                        tools done that are read */
    uint32_t read;   /* the tools some tool reads */
    uint32_t done;   /* the tools with their result */
    int64_t deadline_us;
    cv_budget_t budget; /* the request's: every call's attempts reserve their cost from it */
    size_t pending;     /* tools without their result yet */
    int empty_timer;    /* an empty plan's finish, from the loop; -1 */
    cv_log_t *log;
    gatherer_run_over_fn *over;
    void *owner;
};

/* ToolResult.error must be valid UTF-8 within CV_DETAIL_MAX_BYTES: a message cut in the middle
   of a character loses that character; one in another encoding loses its non-ASCII bytes. */
static char *
s_wire_text (cv_arena_t *arena, const char *text)
{
    char *copy = cv_arena_strdup (arena, text);
    size_t size = strlen (copy);
    if (size > CV_DETAIL_MAX_BYTES)
        copy[size = CV_DETAIL_MAX_BYTES] = '\0';
    size_t lead = size;
    while (lead > 0 && size - lead < 4 && ((unsigned char) copy[lead - 1] & 0xc0) == 0x80)
        lead--;
    if (lead > 0 && ((unsigned char) copy[lead - 1] & 0xc0) == 0xc0) {
        unsigned char byte = (unsigned char) copy[lead - 1];
        size_t needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
        if (size - (lead - 1) < needed)
            copy[size = lead - 1] = '\0';
    }
    if (!cv_utf8_valid (copy, size))
        for (char *c = copy; *c; c++)
            if ((unsigned char) *c >= 0x80)
                *c = '?';
    return copy;
}

/* The Evidence of every result, in the call's reply; the results' rows move into its arena. */
static void
s_set_evidence (gatherer_run_t *self)
{
    const cv_envelope_t *request = cv_worker_call_request (self->call);
    cv_arena_t *arena = cv_worker_call_arena (self->call);
    Conveyor__V1__Evidence *evidence = cv_envelope_set_evidence (cv_worker_call_reply (self->call), arena);
    size_t count = self->plan.count;
    evidence->results = cv_arena_alloc (arena, (count ? count : 1) * sizeof *evidence->results);
    evidence->n_results = count;
    size_t data_bytes = 0;
    for (size_t i = 0; i < count; i++) {
        gatherer_result_t *result = &self->results[i];
        Conveyor__V1__ToolResult *tool = cv_envelope_tool_result_new (arena);
        tool->tool = cv_arena_strdup (arena, self->plan.tools[i]->name);
        int64_t elapsed = result->finished_us - result->started_us;
        tool->elapsed_us = elapsed < 0 ? 0 : elapsed > UINT32_MAX ? UINT32_MAX : (uint32_t) elapsed;
        tool->status = result->status;
        tool->attempts = result->attempts;
        tool->cached = result->cached;
        tool->breaker_open = result->breaker_open;
        tool->cost_micros = result->cost_micros;
        if (result->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK) {
            if (data_bytes + result->size > EVIDENCE_DATA_MAX_BYTES) {
                tool->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
                snprintf (result->error, sizeof result->error,
                          "%zu rows (%zu bytes) would take the evidence over %d bytes", result->rows, result->size,
                          EVIDENCE_DATA_MAX_BYTES);
            } else {
                tool->data.data = cv_arena_adopt (arena, result->data, result->size);
                tool->data.len = result->size;
                result->data = NULL;
                data_bytes += result->size;
            }
        }
        if (*result->error)
            tool->error = s_wire_text (arena, result->error);
        char cost[CV_BUDGET_TEXT_BYTES];
        cv_budget_format (tool->cost_micros, cost);
        if (tool->status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
            cv_log_event (self->log, CV_LOG_DEBUG, request->request_id, request->trace_id,
                          "tool %s: %zu rows%s in %u us, %u attempt(s)%s, cost %s", tool->tool, result->rows,
                          result->dropped ? " (more dropped)" : "", tool->elapsed_us, tool->attempts,
                          tool->cached ? ", cached" : "", cost);
        else
            cv_log_event (self->log, CV_LOG_WARN, request->request_id, request->trace_id, "tool %s %s in %u us: %s",
                          tool->tool, cv_context_tool_status_name (tool->status), tool->elapsed_us, tool->error);
        evidence->results[i] = tool;
        char name[CV_NAME_MAX_BYTES + 8];
        snprintf (name, sizeof name, "tool %s", tool->tool);
        const char *outcome = tool->cached         ? "cached"
                              : tool->breaker_open ? "breaker_open"
                                                   : cv_context_tool_status_name (tool->status);
        (void) cv_trace_add (cv_worker_call_reply (self->call), arena, request->span_id, name, result->started_us,
                             result->finished_us, outcome, tool->status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK);
        gatherer_result_reset (result);
    }
}

/* Every tool has its result: the Evidence goes, the owner forgets the run, the run goes. */
static void
s_over (gatherer_run_t *self)
{
    s_set_evidence (self);
    cv_worker_call_finish (self->call, 0, NULL);
    self->call = NULL;
    self->over (self->owner, self);
    gatherer_run_destroy (&self);
}

static void s_tool_done (void *arg);

/* How an input that is not OK ended, after its name. */
static const char *
s_not_ok (Conveyor__V1__ToolResult__Status status)
{
    switch (status) {
    case CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT:
        return "timed out";
    case CONVEYOR__V1__TOOL_RESULT__STATUS__OVER_BUDGET:
        return "was left undone: its call did not fit the request's budget";
    default:
        return "failed";
    }
}

/* Stops tool index without running it when an input is not there; false when it may run. */
static bool
s_inputs_fail (gatherer_run_t *self, size_t index)
{
    const gatherer_tool_t *tool = self->plan.tools[index];
    gatherer_result_t *result = &self->results[index];
    for (size_t p = 0; p < tool->param_count; p++) {
        if (!tool->reads || !tool->reads[p])
            continue;
        const char *path = tool->params[p], *input = tool->reads[p];
        int from = gatherer_plan_index (self->plan, input);
        assert (from >= 0); /* gatherer_tools made sure */
        const gatherer_result_t *source = &self->results[from];
        json_t *value = cv_template_lookup (self->context, path);
        json_t *rows = json_object_get (json_object_get (self->context, "evidence"), input);
        if (source->status == CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT && source->by_deadline) {
            result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__TIMED_OUT;
            result->by_deadline = true;
            snprintf (result->error, sizeof result->error,
                      "the request's deadline came while it waited for %s (input %s)", input, path);
        } else if (source->status != CONVEYOR__V1__TOOL_RESULT__STATUS__OK) {
            result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
            snprintf (result->error, sizeof result->error, "input %s: %s %s", path, input, s_not_ok (source->status));
        } else if ((!value || json_is_null (value)) && !(tool->optional && tool->optional[p])) {
            result->status = CONVEYOR__V1__TOOL_RESULT__STATUS__FAILED;
            if (!rows)
                snprintf (result->error, sizeof result->error, "input %s: %s's rows could not be read", path, input);
            else if (json_array_size (rows) == 0)
                snprintf (result->error, sizeof result->error, "input %s: %s returned no rows", path, input);
            else
                snprintf (result->error, sizeof result->error, "input %s: %s's %zu row(s) have %s there", path, input,
                          json_array_size (rows), value ? "a null" : "nothing");
        } else
            continue;
        result->started_us = result->finished_us = zclock_usecs ();
        return true;
    }
    return false;
}

/* Starts every waiting tool whose inputs are all done, and stops those whose inputs are not
   there (which may make others ready in turn). */
static void
s_start_ready (gatherer_run_t *self, json_t *context)
{
    bool moved = true;
    while (moved) {
        moved = false;
        for (size_t i = 0; i < self->plan.count; i++) {
            tool_slot_t *slot = &self->tools[i];
            uint32_t inputs = self->plan.inputs ? self->plan.inputs[i] : 0;
            if (slot->state != TOOL_WAITING || (inputs & ~self->done) != 0)
                continue;
            moved = true;
            if (inputs && s_inputs_fail (self, i)) {
                slot->state = TOOL_DONE;
                self->done |= (uint32_t) 1 << i;
                assert (self->pending > 0);
                self->pending--;
                continue;
            }
            slot->state = TOOL_RUNNING;
            slot->call = gatherer_call_start (self->env, self->plan.tools[i], context, self->deadline_us, &self->budget,
                                              &self->results[i], s_tool_done, slot);
        }
    }
}

/* The rows of a tool that others read, into the context as evidence.TOOL (cv_context's shape). */
static void
s_add_evidence (gatherer_run_t *self, size_t index)
{
    const gatherer_result_t *result = &self->results[index];
    const char *name = self->plan.tools[index]->name;
    cv_error_t err;
    json_t *rows = cv_msgpack_unpack (result->data, result->size, name, &err);
    if (!rows) {
        /* its readers say so ("rows could not be read") */
        const cv_envelope_t *request = cv_worker_call_request (self->call);
        cv_log_event (self->log, CV_LOG_WARN, request->request_id, request->trace_id,
                      "tool %s: rows not readable by the tools that read them: %s", name, err.message);
        return;
    }
    json_t *evidence = json_object_get (self->context, "evidence");
    if (!evidence) {
        evidence = json_object ();
        json_object_set_new (self->context, "evidence", evidence);
    }
    json_object_set_new (evidence, name, rows);
}

static void
s_tool_done (void *arg)
{
    tool_slot_t *slot = arg;
    gatherer_run_t *self = slot->run;
    slot->call = NULL;
    slot->state = TOOL_DONE;
    self->done |= (uint32_t) 1 << slot->index;
    if ((self->read & ((uint32_t) 1 << slot->index))
        && self->results[slot->index].status == CONVEYOR__V1__TOOL_RESULT__STATUS__OK)
        s_add_evidence (self, slot->index);
    assert (self->pending > 0);
    self->pending--;
    if (self->read)
        s_start_ready (self, self->context);
    if (self->pending == 0)
        s_over (self);
}

static int
s_empty_plan (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    gatherer_run_t *self = arg;
    self->empty_timer = -1;
    s_over (self);
    return 0;
}

gatherer_run_t *
gatherer_run_start (const gatherer_call_env_t *env, gatherer_plan_t plan, json_t *context, cv_worker_call_t *call,
                    cv_log_t *log, gatherer_run_over_fn *over, void *owner)
{
    assert (env && call && log && over);
    assert (plan.count <= CV_MAX_TOOL_RESULTS);
    gatherer_run_t *self = cv_calloc (1, sizeof *self);
    self->loop = env->loop;
    self->env = env;
    self->call = call;
    self->plan = plan;
    self->log = log;
    self->over = over;
    self->owner = owner;
    self->empty_timer = -1;
    if (plan.count == 0) {
        self->empty_timer = zloop_timer (self->loop, 0, 1, s_empty_plan, self);
        assert (self->empty_timer >= 0);
        return self;
    }
    /* The deadline is wall-clock time; tools are timed on the monotonic clock, and stop a little
       before it so that the Evidence still arrives in time (a late reply is dropped). */
    const cv_envelope_t *request = cv_worker_call_request (call);
    int64_t deadline_us = 0;
    if (request->deadline_ms)
        deadline_us =
            zclock_usecs () + ((int64_t) request->deadline_ms - zclock_time () - GATHERER_RUN_REPLY_MARGIN_MS) * 1000;
    self->deadline_us = deadline_us;
    cv_budget_from_wire (&self->budget, request->budget);
    self->pending = plan.count;
    for (size_t i = 0; i < plan.count; i++) {
        self->tools[i] = (tool_slot_t){.run = self, .index = i, .state = TOOL_WAITING};
        self->read |= plan.inputs ? plan.inputs[i] : 0;
    }
    /* Tools that read others see the context as it grows; the rest read it now only. */
    if (self->read)
        self->context = context ? json_deep_copy (context) : json_object ();
    s_start_ready (self, self->read ? self->context : context);
    assert (self->pending > 0); /* a DAG has tools that read none, and they run */
    return self;
}

void
gatherer_run_destroy (gatherer_run_t **self_p)
{
    assert (self_p);
    gatherer_run_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->plan.count; i++) {
        if (self->tools[i].call)
            gatherer_call_forget (self->tools[i].call);
        gatherer_result_reset (&self->results[i]);
    }
    if (self->empty_timer >= 0)
        zloop_timer_end (self->loop, self->empty_timer);
    json_decref (self->context);
    free (self);
    *self_p = NULL;
}

/*  --------------------------------------------------------------------------
    Self-test */

void
gatherer_run_test (bool verbose)
{
    /* text for the wire: cut at a character boundary, within the limit, UTF-8 */
    cv_arena_t *arena = cv_arena_new ();
    char long_text[CV_DETAIL_MAX_BYTES + 8];
    memset (long_text, 'x', sizeof long_text);
    memcpy (long_text + CV_DETAIL_MAX_BYTES - 1, "\xc3\xa9", 2); /* é across the limit */
    long_text[sizeof long_text - 1] = '\0';
    char *wire = s_wire_text (arena, long_text);
    assert (strlen (wire) == CV_DETAIL_MAX_BYTES - 1 && cv_utf8_valid (wire, strlen (wire)));
    assert (streq (s_wire_text (arena, "caf\xc3\xa9"), "caf\xc3\xa9"));
    assert (streq (s_wire_text (arena, "caf\xe9 au lait"), "caf? au lait"));
    cv_arena_destroy (&arena);
    if (verbose)
        printf ("gatherer_run: ok\n");
}
