/* The requests in flight and their life cycle: stages through the broker, writes through the store. */
#include "orchestrator_metrics.h"
#include "orchestrator_flights.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cv_alloc.h"
#include "cv_budget.h"
#include "cv_crash.h"

/* Where a request in memory is in its life. */
typedef enum {
    PHASE_WRITING,   /* waiting for writes to commit before its next stage may leave: its row, or in
                        sync its last checkpoint */
    PHASE_AT_WORKER, /* its current stage is with the broker, queued or at a worker */
    PHASE_PARKED,    /* a write failed, the store is away: results kept, nothing sent, client told;
                        written again and resumed when the store is back */
    PHASE_CLOSING,   /* finished (done or failed): its answer waits for its writes to commit */
    PHASE_GONE       /* answered and forgotten; freed as soon as no write of it is pending */
} phase_t;

/* What moves a request from one phase to the next. */
typedef enum {
    EVENT_START,        /* it enters: new, or reloaded by recovery */
    EVENT_RESULT,       /* its stage's job ended: a worker's reply, or a failure */
    EVENT_WRITTEN,      /* one of its writes committed */
    EVENT_WRITE_FAILED, /* one of its writes failed */
    EVENT_STORE_BACK    /* the store takes writes again */
} event_t;

typedef struct {
    cv_envelope_t *reply; /* EVENT_RESULT: taken */
    const uint8_t *packed;
    size_t size;
    uint32_t attempts;       /* EVENT_RESULT: how many times the stage was sent */
    const cv_error_t *err;   /* EVENT_RESULT (no reply), EVENT_WRITE_FAILED */
    const char *existing_id; /* EVENT_WRITTEN of the row: the idempotency key's first request */
} event_data_t;

struct _orchestrator_flights_t {
    orchestrator_flights_config_t config;
    zloop_t *loop;
    orchestrator_broker_t *broker;
    orchestrator_store_t *store;
    cv_log_t *log;
    zhashx_t *table; /* request id -> flight_t */
    size_t parked;
    int retry_timer;
};

typedef struct {
    orchestrator_flights_t *flights;
    orchestrator_request_t *request;
    phase_t phase;
    zlistx_t *waiters;       /* orchestrator_exchange_t to answer at the end */
    bool has_key;            /* an idempotency key: the row goes first in every mode */
    int issued;              /* writes queued, in the header's numbering */
    int recorded;            /* writes committed */
    int pending;             /* writes whose callback has not come yet */
    cv_error_code_t failure; /* why it failed, for the status code */
    int64_t started_us;
    int64_t stage_started_us;
} flight_t;

static void s_step (flight_t *flight, event_t event, const event_data_t *data);

int
orchestrator_durability_parse (const char *name)
{
    static const char *const names[] = {"sync", "async", "exit"};
    for (int i = 0; i < 3; i++)
        if (strcmp (name, names[i]) == 0)
            return i;
    return -1;
}

const char *
orchestrator_durability_name (orchestrator_durability_t durability)
{
    return durability == ORCHESTRATOR_DURABILITY_SYNC    ? "sync"
           : durability == ORCHESTRATOR_DURABILITY_ASYNC ? "async"
                                                         : "exit";
}

/*  --------------------------------------------------------------------------
    Flights */

static void
s_flight_destroy (flight_t **self_p)
{
    flight_t *self = *self_p;
    if (!self)
        return;
    orchestrator_broker_cancel (self->flights->broker, self);
    if (self->phase == PHASE_PARKED)
        self->flights->parked--;
    orchestrator_request_destroy (&self->request);
    zlistx_destroy (&self->waiters);
    free (self);
    *self_p = NULL;
}

static flight_t *
s_flight_new (orchestrator_flights_t *self, orchestrator_request_t **request_p)
{
    flight_t *flight = cv_calloc (1, sizeof *flight);
    flight->flights = self;
    flight->request = *request_p;
    *request_p = NULL;
    flight->phase = PHASE_WRITING;
    flight->waiters = zlistx_new ();
    flight->has_key = *orchestrator_request_idempotency_key (flight->request) != '\0';
    flight->started_us = zclock_usecs ();
    zhashx_insert (self->table, orchestrator_request_id (flight->request), flight);
    return flight;
}

static const char *
s_id (const flight_t *flight)
{
    return orchestrator_request_id (flight->request);
}

static void
s_set_phase (flight_t *flight, phase_t phase)
{
    if (flight->phase == PHASE_PARKED)
        flight->flights->parked--;
    if (phase == PHASE_PARKED)
        flight->flights->parked++;
    flight->phase = phase;
}

/* Forgets the flight once nothing of it is pending; true when it is gone. */
static bool
s_forget_if_idle (flight_t *flight)
{
    if (flight->phase != PHASE_GONE || flight->pending > 0)
        return false;
    zhashx_delete (flight->flights->table, s_id (flight)); /* destroys it */
    return true;
}

/*  --------------------------------------------------------------------------
    Answers */

static void
s_answer_all (zlistx_t *waiters, unsigned status, json_t *document, bool retry_after)
{
    for (orchestrator_exchange_t *exchange = zlistx_first (waiters); exchange; exchange = zlistx_next (waiters)) {
        if (retry_after)
            orchestrator_http_add_header (exchange, "Retry-After", "1");
        orchestrator_http_answer (exchange, status, json_deep_copy (document));
    }
    zlistx_purge (waiters);
    json_decref (document);
}

static unsigned
s_final_status (const flight_t *flight)
{
    if (orchestrator_request_state (flight->request) != REQUEST_FAILED)
        return MHD_HTTP_OK;
    return flight->failure == CV_ERR_DEADLINE_EXCEEDED ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY;
}

/* The request has ended and what it must write is committed: answer, and go. */
static void
s_finish (flight_t *flight)
{
    orchestrator_flights_t *self = flight->flights;
    orchestrator_request_t *request = flight->request;
    double total_ms = (double) (zclock_usecs () - flight->started_us) / 1000.0;
    orchestrator_request_set_total_ms (request, total_ms);
    orchestrator_metrics_request_ended (request, total_ms / 1000.0);
    if (self->config.exporter)
        orchestrator_otlp_export (self->config.exporter, request);
    /* the decision log: one line a request, its record beside the message */
    json_t *record = orchestrator_request_record (request);
    if (orchestrator_request_state (request) == REQUEST_FAILED)
        cv_log_record (self->log, CV_LOG_WARN, s_id (flight), orchestrator_request_trace_id (request), "decision",
                       record, "request failed in %.1f ms: %s", total_ms, orchestrator_request_error (request));
    else
        cv_log_record (self->log, CV_LOG_INFO, s_id (flight), orchestrator_request_trace_id (request), "decision",
                       record, "request %s in %.1f ms", orchestrator_request_status (request), total_ms);
    json_decref (record);
    s_answer_all (flight->waiters, s_final_status (flight), orchestrator_request_to_json (request, false), false);
    s_set_phase (flight, PHASE_GONE);
}

/* The waiters of a duplicate, answered with the first request's document once it is loaded. */
typedef struct {
    orchestrator_flights_t *flights;
    zlistx_t *waiters;
} duplicate_t;

static void
s_duplicate_loaded (void *owner, orchestrator_store_answer_t *answer)
{
    duplicate_t *duplicate = owner;
    if (!answer->request)
        s_answer_all (
            duplicate->waiters, MHD_HTTP_SERVICE_UNAVAILABLE,
            json_pack ("{s:{s:s, s:s}}", "error", "code", "store_unavailable", "message", answer->err->message), true);
    else {
        orchestrator_request_t *first = answer->request;
        unsigned status = orchestrator_request_state (first) == REQUEST_FAILED ? MHD_HTTP_BAD_GATEWAY
                          : orchestrator_request_finished (first)              ? MHD_HTTP_OK
                                                                               : MHD_HTTP_ACCEPTED;
        s_answer_all (duplicate->waiters, status, orchestrator_request_to_json (first, false), false);
    }
    zlistx_destroy (&duplicate->waiters);
    free (duplicate);
}

/* The same idempotency key was used before by request first_id: its answer, not a second run. */
static void
s_hand_over (flight_t *flight, const char *first_id)
{
    orchestrator_flights_t *self = flight->flights;
    flight_t *first = zhashx_lookup (self->table, first_id);
    if (first && first->phase != PHASE_GONE) {
        for (void *exchange = zlistx_first (flight->waiters); exchange; exchange = zlistx_next (flight->waiters))
            zlistx_add_end (first->waiters, exchange);
        zlistx_purge (flight->waiters);
        return;
    }
    duplicate_t *duplicate = cv_calloc (1, sizeof *duplicate);
    duplicate->flights = self;
    duplicate->waiters = flight->waiters;
    flight->waiters = zlistx_new ();
    cv_error_t err;
    if (orchestrator_store_load (self->store, first_id, s_duplicate_loaded, duplicate, &err)) {
        orchestrator_store_answer_t answer = {.err = &err};
        s_duplicate_loaded (duplicate, &answer);
    }
}

/*  --------------------------------------------------------------------------
    Stages and writes */

static void
s_job_done (void *owner, cv_envelope_t *reply, const uint8_t *packed, size_t size, uint32_t attempts,
            const cv_error_t *err)
{
    event_data_t data = {.reply = reply, .packed = packed, .size = size, .attempts = attempts, .err = err};
    s_step ((flight_t *) owner, EVENT_RESULT, &data);
}

static void
s_send_stage (flight_t *flight)
{
    orchestrator_request_t *request = flight->request;
    orchestrator_state_t state = orchestrator_request_state (request);
    if (state == REQUEST_EXECUTE)
        CV_CRASH_POINT ("orchestrator.before_execute"); /* the actions' rows are committed */
    else if (state == REQUEST_RESPOND && orchestrator_request_result (request, REQUEST_EXECUTE))
        CV_CRASH_POINT ("orchestrator.after_execute_checkpoint"); /* in sync, their outcome too */
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *envelope = orchestrator_request_stage_envelope (request, arena);
    assert (envelope);
    char job_id[CV_NAME_MAX_BYTES + 1];
    snprintf (job_id, sizeof job_id, "%s.%s", s_id (flight), orchestrator_request_stage_name (state));
    flight->stage_started_us = zclock_usecs ();
    orchestrator_request_set_stage_started_unix_us (request, (int) state, cv_trace_wall_us (flight->stage_started_us));
    /* The envelope borrows earlier results; the broker packs it before they could change. */
    orchestrator_broker_submit (flight->flights->broker, orchestrator_request_service (state), job_id, &arena, envelope,
                                orchestrator_request_attempts_allowed (request), s_job_done, flight);
}

static void
s_write_done (void *owner, orchestrator_store_answer_t *answer)
{
    event_data_t data = {.err = answer->err, .existing_id = answer->existing_id};
    s_step ((flight_t *) owner, answer->err ? EVENT_WRITE_FAILED : EVENT_WRITTEN, &data);
}

/* The stage results the request holds (a skipped stage has none; the orchestrator's own, for
   actions held for approval, counts): each is one checkpoint to write. */
static int
s_accepted (const flight_t *flight)
{
    return orchestrator_request_result_count (flight->request);
}

/* Queues write number item (0 the row, 1..s_accepted the checkpoints of the results in the order
   they came, then the failure). */
static int
s_issue (flight_t *flight, int item, cv_error_t *err)
{
    orchestrator_store_t *store = flight->flights->store;
    if (item == 0)
        return orchestrator_store_create (store, flight->request, s_write_done, flight, err);
    if (item <= s_accepted (flight))
        return orchestrator_store_checkpoint (store, flight->request,
                                              orchestrator_request_result_stage (flight->request, item - 1),
                                              s_write_done, flight, err);
    return orchestrator_store_fail (store, flight->request, s_write_done, flight, err);
}

/* True when the next stage performs the decision's actions: whatever the mode, the request's row
   and its actions' rows (the decide checkpoint) are committed before they leave, so that a crash
   finds them and a retry acts under the same keys, never twice. */
static bool
s_before_side_effects (const flight_t *flight)
{
    return orchestrator_request_state (flight->request) == REQUEST_EXECUTE;
}

/* How many writes the mode wants issued by now. Without an idempotency key, the row waits for
   the first checkpoint and commits with it: a request lost before its first stage ends had not
   been answered, and its client could not have asked for it. */
static int
s_writes_wanted (const flight_t *flight)
{
    bool finished = orchestrator_request_finished (flight->request);
    bool failed = orchestrator_request_state (flight->request) == REQUEST_FAILED;
    int accepted = s_accepted (flight);
    int all = 1 + accepted + (failed ? 1 : 0);
    if (finished || s_before_side_effects (flight)
        || (flight->flights->config.durability != ORCHESTRATOR_DURABILITY_EXIT && accepted > 0))
        return all;
    return flight->has_key ? 1 : 0;
}

/* How many writes must have committed before the next stage leaves. */
static int
s_writes_before_sending (const flight_t *flight)
{
    if (s_before_side_effects (flight)
        || (flight->flights->config.durability == ORCHESTRATOR_DURABILITY_SYNC && s_accepted (flight) > 0))
        return 1 + s_accepted (flight);
    return flight->has_key ? 1 : 0;
}

/* Issues the writes due, then sends the next stage, finishes, or waits, as the mode says. */
static void
s_advance (flight_t *flight)
{
    if (flight->phase == PHASE_PARKED || flight->phase == PHASE_GONE) {
        s_forget_if_idle (flight);
        return;
    }
    int wanted = s_writes_wanted (flight);
    /* What is due now commits together: the row with the first checkpoint, the whole request in
       exit mode, a parked request's writes. */
    orchestrator_store_cork (flight->flights->store, true);
    while (flight->issued < wanted) {
        cv_error_t err;
        flight->pending++;
        if (s_issue (flight, flight->issued, &err)) {
            orchestrator_store_cork (flight->flights->store, false);
            event_data_t data = {.err = &err};
            s_step (flight, EVENT_WRITE_FAILED, &data); /* parks or forgets it */
            return;
        }
        flight->issued++;
    }
    orchestrator_store_cork (flight->flights->store, false);
    if (orchestrator_request_finished (flight->request)) {
        if (flight->recorded >= wanted)
            s_finish (flight);
        else
            s_set_phase (flight, PHASE_CLOSING);
    } else if (flight->phase != PHASE_AT_WORKER) {
        if (flight->recorded >= s_writes_before_sending (flight)) {
            s_set_phase (flight, PHASE_AT_WORKER);
            s_send_stage (flight);
        } else
            s_set_phase (flight, PHASE_WRITING);
    }
    s_forget_if_idle (flight);
}

/* A write failed: the request is parked when its row was committed and the store is only away;
   else it ends here. Its client hears now: its own failure, or why it has no answer yet. */
static void
s_write_failed (flight_t *flight, const cv_error_t *err)
{
    orchestrator_flights_t *self = flight->flights;
    orchestrator_request_t *request = flight->request;
    orchestrator_broker_cancel (self->broker, flight);
    bool failed = orchestrator_request_state (request) == REQUEST_FAILED;
    bool park = flight->recorded > 0 && err->code == CV_ERR_UNAVAILABLE;
    if (!park)
        cv_log_event (self->log, CV_LOG_ERROR, s_id (flight), orchestrator_request_trace_id (request),
                      flight->recorded == 0 ? "cannot record the request: %s"
                                            : "the database refused a write of this request, which ends here: %s",
                      err->message);
    else
        cv_log_event (self->log, CV_LOG_ERROR, s_id (flight), orchestrator_request_trace_id (request),
                      "cannot write to the store: %s; the request resumes when PostgreSQL is back", err->message);
    if (failed)
        s_answer_all (flight->waiters, s_final_status (flight), orchestrator_request_to_json (request, false), false);
    else if (flight->recorded == 0) {
        char message[CV_DETAIL_MAX_BYTES + 64];
        snprintf (message, sizeof message, "nothing was recorded (%s); retry", err->message);
        s_answer_all (flight->waiters, MHD_HTTP_SERVICE_UNAVAILABLE,
                      json_pack ("{s:{s:s, s:s}}", "error", "code", "store_unavailable", "message", message), true);
    } else if (!park) /* the database refused the write itself: writing it again would fail again */
        s_answer_all (flight->waiters, MHD_HTTP_INTERNAL_SERVER_ERROR,
                      json_pack ("{s:{s:s, s:s}, s:s}", "error", "code", "store_refused", "message", err->message,
                                 "request_id", s_id (flight)),
                      false);
    else
        s_answer_all (flight->waiters, MHD_HTTP_SERVICE_UNAVAILABLE,
                      json_pack ("{s:{s:s, s:s}, s:s, s:s}", "error", "code", "store_unavailable", "message",
                                 "the checkpoint store is unavailable; the request will resume", "request_id",
                                 s_id (flight), "status", "running"),
                      true);
    flight->issued = flight->recorded;
    s_set_phase (flight, park ? PHASE_PARKED : PHASE_GONE);
}

/* Why the request stopped before its later stages, once, when it does. */
static void
s_log_stop (const flight_t *flight)
{
    const orchestrator_request_t *request = flight->request;
    const orchestrator_limits_t *limits = orchestrator_request_limits (request);
    orchestrator_spend_t spend;
    orchestrator_request_spend (request, &spend);
    char spent[CV_BUDGET_TEXT_BYTES], budget[CV_BUDGET_TEXT_BYTES];
    cv_budget_format (spend.micros, spent);
    cv_budget_format (limits->budget_micros, budget);
    if (orchestrator_request_failed_stage (request))
        cv_log_event (flight->flights->log, CV_LOG_WARN, s_id (flight), orchestrator_request_trace_id (request),
                      "stage %s failed: %s; answering that it could not be completed",
                      orchestrator_request_failed_stage (request), orchestrator_request_error (request));
    else if (orchestrator_request_stopped (request) == CONVEYOR__V1__RESPOND_REQUEST__STOP__OVER_BUDGET)
        cv_log_event (
            flight->flights->log, CV_LOG_WARN, s_id (flight), orchestrator_request_trace_id (request),
            "stopped over its budget: %s spent of %s%s; answering that it could not be finished", spent, budget,
            spend.micros > limits->budget_micros ? "" : ", and a spend left undone that did not fit the rest");
    else
        cv_log_event (flight->flights->log, CV_LOG_WARN, s_id (flight), orchestrator_request_trace_id (request),
                      "stopped after %u stage attempts, its limit; answering that it could not be finished",
                      orchestrator_request_attempts_used (request));
}

/* Keeps the reply's reserve from the request's deadline, as of now (orchestrator_request.h). */
static void
s_keep_reply_reserve (const orchestrator_flights_t *self, orchestrator_request_t *request)
{
    (void) orchestrator_request_keep_reply_reserve (request, (uint32_t) self->config.reply_reserve_ms,
                                                    (uint64_t) zclock_time ());
}

/* The one function that moves a request between phases. */
static void
s_step (flight_t *flight, event_t event, const event_data_t *data)
{
    orchestrator_request_t *request = flight->request;
    switch (event) {
    case EVENT_START:
        break;
    case EVENT_RESULT: {
        assert (flight->phase == PHASE_AT_WORKER);
        cv_error_t err;
        cv_envelope_t *reply = data->reply;
        orchestrator_state_t stage = orchestrator_request_state (request);
        if (!reply) {
            if (orchestrator_request_stage_failed (request, data->attempts, data->err))
                flight->failure = data->err->code;
            else
                s_log_stop (flight);
        } else if (orchestrator_request_accept (request, &reply, data->packed, data->size,
                                                zclock_usecs () - flight->stage_started_us, data->attempts, &err)) {
            if (stage != REQUEST_RESPOND && orchestrator_request_failed_stage (request))
                s_log_stop (flight); /* its reply is next */
            else
                flight->failure = err.code;
        } else {
            if (stage != REQUEST_RESPOND && orchestrator_request_stopped (request))
                s_log_stop (flight);
            if (orchestrator_request_state (request) == REQUEST_EXECUTE)
                CV_CRASH_POINT ("orchestrator.before_actions_recorded");
            else if (stage == REQUEST_EXECUTE)
                CV_CRASH_POINT ("orchestrator.after_action_results"); /* performed, not checkpointed */
        }
        s_set_phase (flight, PHASE_WRITING);
        break;
    }
    case EVENT_WRITTEN:
        flight->pending--;
        if (flight->phase == PHASE_GONE)
            break;
        if (data->existing_id) {
            s_hand_over (flight, data->existing_id);
            s_set_phase (flight, PHASE_GONE);
            break;
        }
        flight->recorded++;
        break;
    case EVENT_WRITE_FAILED:
        flight->pending--;
        if (flight->phase != PHASE_GONE && flight->phase != PHASE_PARKED)
            s_write_failed (flight, data->err);
        break;
    case EVENT_STORE_BACK:
        if (flight->phase != PHASE_PARKED)
            break;
        cv_log_event (flight->flights->log, CV_LOG_INFO, s_id (flight), orchestrator_request_trace_id (request),
                      "resuming at stage %s after the store came back",
                      orchestrator_request_stage_name (orchestrator_request_state (request)));
        orchestrator_request_set_deadline (request, (uint64_t) zclock_time ()
                                                        + (uint64_t) flight->flights->config.request_timeout_ms);
        s_keep_reply_reserve (flight->flights, request);
        s_set_phase (flight, PHASE_WRITING);
        break;
    }
    s_advance (flight);
}

/*  --------------------------------------------------------------------------
    The table */

static int
s_retry_parked (zloop_t *loop, int timer_id, void *arg)
{
    orchestrator_flights_t *self = arg;
    if (self->parked == 0 || !orchestrator_store_available (self->store))
        return 0;
    zlistx_t *parked = zlistx_new ();
    for (flight_t *flight = zhashx_first (self->table); flight; flight = zhashx_next (self->table))
        if (flight->phase == PHASE_PARKED)
            zlistx_add_end (parked, flight);
    for (flight_t *flight = zlistx_first (parked); flight; flight = zlistx_next (parked))
        s_step (flight, EVENT_STORE_BACK, NULL);
    zlistx_destroy (&parked);
    return 0;
}

orchestrator_flights_t *
orchestrator_flights_new (zloop_t *loop, const orchestrator_flights_config_t *config, orchestrator_broker_t *broker,
                          orchestrator_store_t *store, cv_log_t *log)
{
    assert (loop && config && broker && store && log);
    orchestrator_flights_t *self = cv_calloc (1, sizeof *self);
    self->config = *config;
    if (self->config.retry_ms <= 0)
        self->config.retry_ms = 250;
    self->loop = loop;
    self->broker = broker;
    self->store = store;
    self->log = log;
    self->table = zhashx_new ();
    zhashx_set_destructor (self->table, (zhashx_destructor_fn *) s_flight_destroy);
    self->retry_timer = zloop_timer (loop, (size_t) self->config.retry_ms, 0, s_retry_parked, self);
    return self;
}

void
orchestrator_flights_stop (orchestrator_flights_t *self)
{
    for (flight_t *flight = zhashx_first (self->table); flight; flight = zhashx_next (self->table)) {
        if (zlistx_size (flight->waiters) == 0)
            continue;
        if (flight->recorded > 0)
            s_answer_all (flight->waiters, MHD_HTTP_SERVICE_UNAVAILABLE,
                          json_pack ("{s:{s:s, s:s}, s:s, s:s}", "error", "code", "shutting_down", "message",
                                     "the orchestrator is stopping; the request resumes when it is back", "request_id",
                                     s_id (flight), "status", "running"),
                          true);
        else
            s_answer_all (flight->waiters, MHD_HTTP_SERVICE_UNAVAILABLE,
                          json_pack ("{s:{s:s, s:s}}", "error", "code", "shutting_down", "message",
                                     "the orchestrator is stopping; nothing was recorded, retry"),
                          true);
    }
}

void
orchestrator_flights_destroy (orchestrator_flights_t **self_p)
{
    assert (self_p);
    orchestrator_flights_t *self = *self_p;
    if (!self)
        return;
    zloop_timer_end (self->loop, self->retry_timer);
    zhashx_destroy (&self->table);
    free (self);
    *self_p = NULL;
}

void
orchestrator_flights_start (orchestrator_flights_t *self, orchestrator_request_t **request_p,
                            orchestrator_exchange_t *exchange)
{
    assert (request_p && *request_p);
    s_keep_reply_reserve (self, *request_p);
    flight_t *flight = s_flight_new (self, request_p);
    if (exchange)
        zlistx_add_end (flight->waiters, exchange);
    s_step (flight, EVENT_START, NULL);
}

void
orchestrator_flights_resume (orchestrator_flights_t *self, orchestrator_request_t **request_p)
{
    assert (request_p && *request_p);
    orchestrator_request_t *request = *request_p;
    assert (!orchestrator_request_finished (request));
    orchestrator_request_set_deadline (request, (uint64_t) zclock_time () + (uint64_t) self->config.request_timeout_ms);
    s_keep_reply_reserve (self, request);
    cv_log_event (self->log, CV_LOG_INFO, orchestrator_request_id (request), orchestrator_request_trace_id (request),
                  "resuming at stage %s", orchestrator_request_stage_name (orchestrator_request_state (request)));
    flight_t *flight = s_flight_new (self, request_p);
    /* What it has was read back from the store: its row and the checkpoints of its stages. A
       result made again on the way (the orchestrator's own, for actions held for approval) may
       still lack its checkpoint: written next. */
    flight->issued = flight->recorded = 1 + orchestrator_request_checkpoint_count (flight->request);
    s_step (flight, EVENT_START, NULL);
}

bool
orchestrator_flights_join (orchestrator_flights_t *self, const char *id, orchestrator_exchange_t *exchange)
{
    flight_t *flight = zhashx_lookup (self->table, id);
    if (!flight || flight->phase == PHASE_GONE)
        return false;
    zlistx_add_end (flight->waiters, exchange);
    return true;
}

bool
orchestrator_flights_has (const orchestrator_flights_t *self, const char *id)
{
    return zhashx_lookup (self->table, id) != NULL;
}

size_t
orchestrator_flights_size (const orchestrator_flights_t *self)
{
    return zhashx_size (self->table);
}

size_t
orchestrator_flights_parked (const orchestrator_flights_t *self)
{
    return self->parked;
}
