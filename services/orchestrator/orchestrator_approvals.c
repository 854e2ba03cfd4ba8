/* Human approval of actions: the queue, a person's decision, expiry. */
#include "orchestrator_approvals.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "cv_alloc.h"
#include "cv_envelope.h"
#include "orchestrator_metrics.h"

#define APPROVALS_LISTED 100 /* at most, per GET */
#define EXPIRED_PER_ROUND 16

struct _orchestrator_approvals_t {
    orchestrator_approvals_config_t config;
    zloop_t *loop;
    orchestrator_flights_t *flights;
    orchestrator_store_t *store;
    cv_log_t *log;
    int timer;
    bool listing;              /* an expiry round is asking for what expired */
    bool counting;             /* ...and how many wait, for the metrics */
    size_t expiring_decisions; /* ...and its decisions not answered yet: no new round until none */
};

/* One decision on its way through the store: whose, and who waits for its answer. */
typedef struct {
    orchestrator_approvals_t *approvals;
    orchestrator_exchange_t *exchange; /* NULL for an expiry */
    char id[CV_NAME_MAX_BYTES + 1];    /* the request decided on */
    bool approve;
} decision_t;

/* The end of a decision: an expiry's is counted off its round. */
static void
s_decision_free (decision_t *decision)
{
    if (!decision->exchange)
        decision->approvals->expiring_decisions--;
    free (decision);
}

static void
s_unavailable (orchestrator_exchange_t *exchange, const char *message)
{
    orchestrator_http_answer_unavailable (exchange, "store_unavailable", "%s", message);
}

/* True when the exchange carries the operator token; else answers it 401, or 403 when there is
   no token to compare with. The comparison takes the same time wherever the strings differ. */
static bool
s_authorized (orchestrator_approvals_t *self, orchestrator_exchange_t *exchange)
{
    const char *token = self->config.operator_token;
    if (!token || !*token) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_FORBIDDEN, "approvals_off",
                                        "approvals need an operator token: set CONVEYOR_OPERATOR_TOKEN");
        return false;
    }
    const char *given = orchestrator_http_header (exchange, "Authorization");
    const char *prefix = "Bearer ";
    bool same =
        given && strncmp (given, prefix, strlen (prefix)) == 0 && strlen (given + strlen (prefix)) == strlen (token);
    if (same) {
        unsigned char differ = 0;
        for (size_t i = 0; token[i]; i++)
            differ |= (unsigned char) (token[i] ^ given[strlen (prefix) + i]);
        same = differ == 0;
    }
    if (!same)
        orchestrator_http_answer_error (exchange, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                        "this route needs the operator token: Authorization: Bearer TOKEN");
    return same;
}

/*  --------------------------------------------------------------------------
    The queue */

static void
s_listed (void *owner, orchestrator_store_answer_t *answer)
{
    orchestrator_exchange_t *exchange = owner;
    if (answer->err)
        s_unavailable (exchange, answer->err->message);
    else
        orchestrator_http_answer (exchange, MHD_HTTP_OK, json_pack ("{s:O}", "approvals", answer->approvals));
}

void
orchestrator_approvals_list (orchestrator_approvals_t *self, orchestrator_exchange_t *exchange)
{
    if (!s_authorized (self, exchange))
        return;
    cv_error_t err;
    if (orchestrator_store_approvals (self->store, APPROVALS_LISTED, s_listed, exchange, &err))
        s_unavailable (exchange, err.message);
}

/*  --------------------------------------------------------------------------
    A decision, and its follow-up */

/* The follow-up read back: answered when finished, joined when it runs here already, else run
   here (its decision was just recorded, or recovery has not met it yet). */
static void
s_follow_up_loaded (void *owner, orchestrator_store_answer_t *answer)
{
    decision_t *decision = owner;
    orchestrator_approvals_t *self = decision->approvals;
    orchestrator_exchange_t *exchange = decision->exchange;
    orchestrator_request_t *request = answer->request;
    if (!request) {
        cv_log_event (self->log, CV_LOG_ERROR, decision->id, NULL, "cannot load the follow-up of a decision: %s",
                      answer->err->message);
        if (exchange)
            s_unavailable (exchange, answer->err->message);
    } else if (orchestrator_request_finished (request)) {
        if (exchange) /* as flights answer a finished request: a failed one is 502 */
            orchestrator_http_answer (
                exchange, orchestrator_request_state (request) == REQUEST_FAILED ? MHD_HTTP_BAD_GATEWAY : MHD_HTTP_OK,
                orchestrator_request_to_json (request, false));
    } else if (orchestrator_flights_has (self->flights, orchestrator_request_id (request))) {
        if (exchange && !orchestrator_flights_join (self->flights, orchestrator_request_id (request), exchange))
            s_unavailable (exchange, "the follow-up is finishing; ask again");
    } else {
        char id[CV_NAME_MAX_BYTES + 1];
        snprintf (id, sizeof id, "%s", orchestrator_request_id (request));
        answer->request = NULL;
        orchestrator_flights_resume (self->flights, &request);
        if (exchange && !orchestrator_flights_join (self->flights, id, exchange))
            s_unavailable (exchange, "the follow-up is finishing; ask again");
    }
    s_decision_free (decision);
}

static void
s_decided (void *owner, orchestrator_store_answer_t *answer)
{
    decision_t *decision = owner;
    orchestrator_approvals_t *self = decision->approvals;
    orchestrator_exchange_t *exchange = decision->exchange;
    if (answer->err) {
        if (answer->err->code != CV_ERR_INVALID)
            cv_log_event (self->log, CV_LOG_ERROR, decision->id, NULL, "cannot record a decision: %s",
                          answer->err->message);
        if (exchange && answer->err->code == CV_ERR_INVALID && streq (answer->err->field, "id"))
            orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "%s", answer->err->message);
        else if (exchange && answer->err->code == CV_ERR_INVALID)
            orchestrator_http_answer_error (exchange, MHD_HTTP_CONFLICT, "not_pending",
                                            "%s; if it was just decided, ask again", answer->err->message);
        else if (exchange)
            s_unavailable (exchange, answer->err->message);
        s_decision_free (decision);
        return;
    }
    const char *asked = decision->approve ? "approved" : "rejected";
    if (answer->made)
        cv_log_event (self->log, CV_LOG_INFO, decision->id, NULL, "actions %s: follow-up %s", asked,
                      answer->existing_id);
    if (strcmp (answer->approval, asked) != 0) {
        if (exchange)
            orchestrator_http_answer (exchange, MHD_HTTP_CONFLICT,
                                      json_pack ("{s:{s:s, s:s}, s:s}", "error", "code", "already_decided", "message",
                                                 strcmp (answer->approval, "approved") == 0
                                                     ? "its actions were approved already"
                                                     : "its actions were rejected already",
                                                 "follow_up_id", answer->existing_id));
        s_decision_free (decision);
        return;
    }
    /* The follow-up: joined when it runs here, else loaded (and run, or read when finished). */
    if (exchange && orchestrator_flights_join (self->flights, answer->existing_id, exchange)) {
        s_decision_free (decision);
        return;
    }
    cv_error_t err;
    if (orchestrator_store_load (self->store, answer->existing_id, s_follow_up_loaded, decision, &err)) {
        if (exchange)
            s_unavailable (exchange, err.message);
        s_decision_free (decision);
    }
}

/* Records approver's decision on request id and answers exchange (NULL: nobody waits) with the
   follow-up's document. */
static void
s_decide (orchestrator_approvals_t *self, orchestrator_exchange_t *exchange, const char *id, bool approve,
          const char *approver)
{
    decision_t *decision = cv_calloc (1, sizeof *decision);
    decision->approvals = self;
    decision->exchange = exchange;
    if (!exchange)
        self->expiring_decisions++;
    decision->approve = approve;
    snprintf (decision->id, sizeof decision->id, "%s", id);
    char follow_up_id[REQUEST_ID_BYTES];
    orchestrator_request_new_id (follow_up_id);
    cv_error_t err;
    if (orchestrator_store_decide (
            self->store, id, follow_up_id, approve ? REQUEST_APPROVAL_APPROVED : REQUEST_APPROVAL_REJECTED, approver,
            (uint64_t) zclock_time () + (uint64_t) self->config.request_timeout_ms, s_decided, decision, &err)) {
        if (exchange)
            s_unavailable (exchange, err.message);
        s_decision_free (decision);
    }
}

void
orchestrator_approvals_decide (orchestrator_approvals_t *self, orchestrator_exchange_t *exchange, const char *id,
                               bool approve, json_t *body)
{
    if (!s_authorized (self, exchange))
        return;
    if (!cv_name_valid (id)) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_NOT_FOUND, "not_found", "no request %s", id);
        return;
    }
    const char *approver = json_string_value (json_object_get (body, "approver"));
    if (!approver || !cv_name_valid (approver) || strcmp (approver, ORCHESTRATOR_APPROVAL_EXPIRED) == 0) {
        orchestrator_http_answer_error (exchange, MHD_HTTP_BAD_REQUEST, "invalid_field",
                                        "approver: who decides, 1..%d of " CV_NAME_CHARS " (not \"%s\"), is required",
                                        CV_NAME_MAX_BYTES, ORCHESTRATOR_APPROVAL_EXPIRED);
        return;
    }
    s_decide (self, exchange, id, approve, approver);
}

/*  --------------------------------------------------------------------------
    Expiry */

static void
s_expired (void *owner, orchestrator_store_answer_t *answer)
{
    orchestrator_approvals_t *self = owner;
    self->listing = false;
    if (answer->err)
        return; /* the store is away: the next round asks again */
    for (size_t i = 0; answer->ids[i]; i++) {
        cv_log_event (self->log, CV_LOG_INFO, answer->ids[i], NULL,
                      "no decision within %d s: its actions are rejected as expired", self->config.expiry_s);
        s_decide (self, NULL, answer->ids[i], false, ORCHESTRATOR_APPROVAL_EXPIRED);
    }
}

static void
s_counted (void *owner, orchestrator_store_answer_t *answer)
{
    orchestrator_approvals_t *self = owner;
    self->counting = false;
    if (answer->err)
        return; /* the gauges keep their last figures until the store answers again */
    const orchestrator_metrics_t *metrics = orchestrator_metrics ();
    cv_metric_set (cv_metric_with (metrics->approvals_pending), (double) answer->pending);
    cv_metric_set (cv_metric_with (metrics->approvals_oldest_seconds), answer->oldest_waiting_s);
}

static int
s_expiry_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    orchestrator_approvals_t *self = arg;
    cv_error_t err;
    if (!self->counting && orchestrator_store_available (self->store)
        && orchestrator_store_pending (self->store, s_counted, self, &err) == 0)
        self->counting = true;
    /* one round at a time, so that no request is listed again while its decision is recorded */
    if (!self->listing && self->expiring_decisions == 0 && orchestrator_store_available (self->store)
        && orchestrator_store_expired (self->store, self->config.expiry_s, EXPIRED_PER_ROUND, s_expired, self, &err)
               == 0)
        self->listing = true;
    return 0;
}

orchestrator_approvals_t *
orchestrator_approvals_new (zloop_t *loop, const orchestrator_approvals_config_t *config,
                            orchestrator_flights_t *flights, orchestrator_store_t *store, cv_log_t *log)
{
    assert (loop && config && flights && store && log && config->expiry_s > 0);
    orchestrator_approvals_t *self = cv_calloc (1, sizeof *self);
    self->config = *config;
    if (self->config.expiry_check_ms <= 0)
        self->config.expiry_check_ms = 1000;
    self->loop = loop;
    self->flights = flights;
    self->store = store;
    self->log = log;
    self->timer = zloop_timer (loop, (size_t) self->config.expiry_check_ms, 0, s_expiry_timer, self);
    return self;
}

void
orchestrator_approvals_destroy (orchestrator_approvals_t **self_p)
{
    assert (self_p);
    orchestrator_approvals_t *self = *self_p;
    if (!self)
        return;
    zloop_timer_end (self->loop, self->timer);
    free (self);
    *self_p = NULL;
}
