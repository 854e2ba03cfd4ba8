/* The orchestrator's ZeroMQ broker: worker registry, LRU dispatch, heartbeats and bounded retries. */
#include "orchestrator_broker.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cv_alloc.h"
#include "cv_mdp.h"
#include "orchestrator_metrics.h"

typedef struct {
    char *key; /* routing id, hex, for the registry */
    zframe_t *identity;
    char service[65];
    char instance[65];
    uint32_t capacity;
    uint32_t in_flight;
    int64_t expires_at;   /* mono ms: dead when no message arrives by then */
    int64_t heartbeat_at; /* mono ms: when to send the next heartbeat */
    int64_t last_used;    /* mono ms: for least-recently-used dispatch */
} worker_t;

typedef struct {
    char *job_id;
    char *service;
    orchestrator_broker_done_fn *done;
    void *owner;
    cv_arena_t *arena;
    cv_envelope_t *envelope;
    uint32_t attempt;      /* of the current or next send */
    uint32_t max_attempts; /* this job's */
    char message_id[CV_NAME_MAX_BYTES + 1];
    worker_t *worker;        /* NULL while queued */
    int64_t not_before;      /* mono ms: backoff before the next send */
    int64_t attempt_expires; /* mono ms: this attempt's limit */
} job_t;

struct _orchestrator_broker_t {
    orchestrator_broker_config_t config;
    zloop_t *loop;
    zsock_t *router;
    char *endpoint;
    zhashx_t *workers; /* key -> worker_t */
    zlistx_t *jobs;    /* job_t, oldest first */
    int timer;
};

/*  --------------------------------------------------------------------------
    Workers */

static void
s_worker_destroy (worker_t **self_p)
{
    worker_t *self = *self_p;
    if (!self)
        return;
    zframe_destroy (&self->identity);
    free (self->key);
    free (self);
    *self_p = NULL;
}

static void
s_send_to (orchestrator_broker_t *self, zframe_t *identity, zmsg_t **msg_p)
{
    zframe_t *to = zframe_dup (identity);
    zmsg_prepend (*msg_p, &to);
    zmsg_send (msg_p, self->router);
}

static void s_requeue (orchestrator_broker_t *self, job_t *job, const char *why);

static void
s_worker_remove (orchestrator_broker_t *self, worker_t *worker, const char *why)
{
    cv_log_warn (self->config.log, "worker %s (%s) removed: %s", worker->instance, worker->service, why);
    for (job_t *job = zlistx_first (self->jobs); job; job = zlistx_next (self->jobs))
        if (job->worker == worker)
            s_requeue (self, job, why);
    zhashx_delete (self->workers, worker->key);
}

/*  --------------------------------------------------------------------------
    Jobs */

static void
s_job_destroy (job_t **self_p)
{
    job_t *self = *self_p;
    if (!self)
        return;
    free (self->job_id);
    free (self->service);
    cv_arena_destroy (&self->arena);
    free (self);
    *self_p = NULL;
}

/* Tells the owner of a job already detached from the list, and destroys it. The owner's callback
   may submit or cancel jobs, so callers must not hold a cursor into the job list across this. */
static void
s_job_finish (orchestrator_broker_t *self, job_t *job, cv_envelope_t *reply, zframe_t *body, const cv_error_t *err)
{
    if (job->worker && job->worker->in_flight > 0)
        job->worker->in_flight--;
    void *owner = job->owner;
    orchestrator_broker_done_fn *done = job->done;
    uint32_t sent = reply ? job->attempt : job->attempt - 1; /* a failed job's attempt is the next one */
    s_job_destroy (&job);
    done (owner, reply, body ? zframe_data (body) : NULL, body ? zframe_size (body) : 0, sent, err);
}

static int64_t
s_backoff (const orchestrator_broker_t *self, uint32_t attempt)
{
    /* attempt 2 waits backoff_ms, 3 twice that..., each with up to 50% jitter */
    int64_t base = (int64_t) self->config.backoff_ms << (attempt > 2 ? (attempt - 2 > 10 ? 10 : attempt - 2) : 0);
    return base + (int64_t) (randof (base / 2 + 1));
}

static void
s_requeue (orchestrator_broker_t *self, job_t *job, const char *why)
{
    if (job->worker && job->worker->in_flight > 0)
        job->worker->in_flight--;
    job->worker = NULL;
    job->message_id[0] = '\0'; /* a late reply to the old attempt no longer matches */
    cv_log_event (self->config.log, CV_LOG_WARN, job->envelope->request_id, job->envelope->trace_id,
                  "%s attempt %u failed: %s", job->service, job->attempt, why);
    cv_metric_add (cv_metric_with (orchestrator_metrics ()->retries, job->service), 1);
    job->attempt++;
    job->not_before = zclock_mono () + s_backoff (self, job->attempt);
}

static worker_t *
s_pick_worker (orchestrator_broker_t *self, const char *service)
{
    worker_t *best = NULL;
    for (worker_t *worker = zhashx_first (self->workers); worker; worker = zhashx_next (self->workers))
        if (streq (worker->service, service) && worker->in_flight < worker->capacity
            && (!best || worker->last_used < best->last_used))
            best = worker;
    return best;
}

static void
s_send_job (orchestrator_broker_t *self, job_t *job, worker_t *worker)
{
    int64_t now = zclock_mono ();
    snprintf (job->message_id, sizeof job->message_id, "%s.%u", job->job_id, job->attempt);
    job->envelope->message_id = job->message_id;
    job->envelope->attempt = job->attempt;
    cv_metric_add (cv_metric_with (orchestrator_metrics ()->dispatches, job->service), 1);
    size_t size;
    uint8_t *packed = cv_envelope_pack (job->envelope, &size);
    zmsg_t *msg = cv_mdp_with_body (CV_MDP_REQUEST, packed, size);
    free (packed);
    s_send_to (self, worker->identity, &msg);
    job->worker = worker;
    worker->in_flight++;
    worker->last_used = now;
    int64_t left = (int64_t) job->envelope->deadline_ms - zclock_time ();
    job->attempt_expires = now + (left < self->config.attempt_timeout_ms ? left : self->config.attempt_timeout_ms);
    cv_log_event (self->config.log, CV_LOG_DEBUG, job->envelope->request_id, job->envelope->trace_id,
                  "sent %s to %s (attempt %u)", job->message_id, worker->instance, job->attempt);
}

/* A queued job out of attempts or time: it is failed, not sent. */
static bool
s_job_expired (const orchestrator_broker_t *self, const job_t *job, uint64_t wall)
{
    return !job->worker && (job->envelope->deadline_ms <= wall || job->attempt > job->max_attempts);
}

/* The first expired job, left at the list's cursor; NULL when there is none. */
static job_t *
s_first_expired (orchestrator_broker_t *self, uint64_t wall)
{
    for (job_t *job = zlistx_first (self->jobs); job; job = zlistx_next (self->jobs))
        if (s_job_expired (self, job, wall))
            return job;
    return NULL;
}

/* Sends what can be sent, then fails what is out of attempts or time. Failing is done after the
   walk, one job at a time and each looked up again in the list, because the owner's callback may
   change the list: a job it cancels, even one that expired with this one, must not be reported. */
static void
s_dispatch (orchestrator_broker_t *self)
{
    int64_t now = zclock_mono ();
    uint64_t wall = (uint64_t) zclock_time ();
    for (job_t *job = zlistx_first (self->jobs); job; job = zlistx_next (self->jobs)) {
        if (job->worker && now >= job->attempt_expires)
            s_requeue (self, job, "no reply in time");
        if (job->worker || s_job_expired (self, job, wall))
            continue;
        if (now >= job->not_before) {
            worker_t *worker = s_pick_worker (self, job->service);
            if (worker)
                s_send_job (self, job, worker);
        }
    }
    for (job_t *job = s_first_expired (self, wall); job; job = s_first_expired (self, wall)) {
        zlistx_detach_cur (self->jobs);
        cv_error_t err;
        if (job->envelope->deadline_ms <= wall)
            cv_error_set (&err, CV_ERR_DEADLINE_EXCEEDED, NULL, "%s: deadline passed after %u attempt(s)", job->service,
                          job->attempt - 1);
        else
            cv_error_set (&err, CV_ERR_UNAVAILABLE, NULL, "%s: gave up after %u attempt(s)", job->service,
                          job->max_attempts);
        s_job_finish (self, job, NULL, NULL, &err);
    }
}

/*  --------------------------------------------------------------------------
    Socket and timer handlers */

static void
s_handle_reply (orchestrator_broker_t *self, worker_t *worker, zframe_t *body)
{
    cv_error_t err;
    cv_envelope_t *reply = cv_envelope_unpack (zframe_data (body), zframe_size (body), &err);
    if (!reply) {
        cv_log_warn (self->config.log, "dropped a reply from %s: %s", worker->instance, err.message);
        cv_metric_add (
            cv_metric_with (cv_metrics_messages_rejected (cv_metrics_process ()), cv_error_code_name (err.code)), 1);
        return;
    }
    job_t *job = NULL;
    for (job_t *candidate = zlistx_first (self->jobs); candidate; candidate = zlistx_next (self->jobs))
        if (candidate->worker == worker && streq (candidate->message_id, reply->message_id)) {
            job = candidate;
            break;
        }
    bool retry = job && reply->body_case == CONVEYOR__V1__ENVELOPE__BODY_ERROR
                 && reply->error->code == CONVEYOR__V1__ERROR__CODE__UNAVAILABLE;
    if (job && !retry)
        zlistx_detach_cur (self->jobs);
    if (!job) {
        cv_log_event (self->config.log, CV_LOG_INFO, reply->request_id, reply->trace_id,
                      "dropped a late or unknown reply %s from %s", reply->message_id, worker->instance);
        cv_envelope_destroy (&reply);
        return;
    }
    if (retry) {
        char why[CV_DETAIL_MAX_BYTES + 64];
        snprintf (why, sizeof why, "%s answered UNAVAILABLE: %s", worker->instance, reply->error->message);
        s_requeue (self, job, why);
        cv_envelope_destroy (&reply);
        return;
    }
    s_job_finish (self, job, reply, body, NULL);
}

/* Handles one message from a worker or a stranger. */
static void
s_handle_message (orchestrator_broker_t *self, zsock_t *reader)
{
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return;
    zframe_t *identity = zmsg_pop (msg);
    if (!identity) {
        zmsg_destroy (&msg);
        return;
    }
    char *key = zframe_strhex (identity);
    cv_mdp_message_t message;
    cv_error_t err;
    if (cv_mdp_decode (&msg, &message, &err)) {
        cv_log_warn (self->config.log, "dropped a malformed message from peer %s: %s", key, err.message);
        free (key);
        zframe_destroy (&identity);
        return;
    }
    worker_t *worker = zhashx_lookup (self->workers, key);
    int64_t now = zclock_mono ();
    int64_t lifetime = (int64_t) self->config.heartbeat_ms * self->config.liveness;

    if (message.command == CV_MDP_READY) {
        if (worker)
            s_worker_remove (self, worker, "said READY again");
        worker = cv_calloc (1, sizeof *worker);
        worker->key = cv_strdup (key);
        worker->identity = zframe_dup (identity);
        snprintf (worker->service, sizeof worker->service, "%s", message.service);
        snprintf (worker->instance, sizeof worker->instance, "%s", message.instance);
        worker->capacity = message.capacity;
        worker->heartbeat_at = now + self->config.heartbeat_ms;
        worker->expires_at = now + lifetime;
        zhashx_insert (self->workers, worker->key, worker);
        cv_log_info (self->config.log, "worker %s ready for %s (capacity %u)", worker->instance, worker->service,
                     worker->capacity);
    } else if (!worker) {
        /* A worker we do not know (we restarted, or forgot it): it must say READY again. */
        if (message.command != CV_MDP_DISCONNECT) {
            zmsg_t *disconnect = cv_mdp_command (CV_MDP_DISCONNECT);
            s_send_to (self, identity, &disconnect);
        }
    } else {
        worker->expires_at = now + lifetime;
        if (message.command == CV_MDP_REPLY)
            s_handle_reply (self, worker, message.body);
        else if (message.command == CV_MDP_DISCONNECT)
            s_worker_remove (self, worker, "disconnected");
        else if (message.command != CV_MDP_HEARTBEAT)
            cv_log_warn (self->config.log, "unexpected %s from %s", cv_mdp_command_name (message.command),
                         worker->instance);
    }
    cv_mdp_message_reset (&message);
    free (key);
    zframe_destroy (&identity);
}

/* Takes what has arrived, up to a bound, before dispatching once: under load one wake-up of the
   loop serves many replies. */
#define MESSAGES_PER_WAKEUP 64
static int
s_router_readable (zloop_t *loop, zsock_t *reader, void *arg)
{
    orchestrator_broker_t *self = arg;
    for (int i = 0; i < MESSAGES_PER_WAKEUP && (i == 0 || (zsock_events (reader) & ZMQ_POLLIN)); i++)
        s_handle_message (self, reader);
    s_dispatch (self);
    return 0;
}

static int
s_tick (zloop_t *loop, int timer_id, void *arg)
{
    orchestrator_broker_t *self = arg;
    int64_t now = zclock_mono ();
    /* Collect first: removing while iterating the hash is not allowed. */
    zlistx_t *dead = zlistx_new ();
    for (worker_t *worker = zhashx_first (self->workers); worker; worker = zhashx_next (self->workers)) {
        if (now >= worker->expires_at)
            zlistx_add_end (dead, worker);
        else if (now >= worker->heartbeat_at) {
            zmsg_t *heartbeat = cv_mdp_command (CV_MDP_HEARTBEAT);
            s_send_to (self, worker->identity, &heartbeat);
            worker->heartbeat_at = now + self->config.heartbeat_ms;
        }
    }
    for (worker_t *worker = zlistx_first (dead); worker; worker = zlistx_next (dead)) {
        cv_metric_add (cv_metric_with (orchestrator_metrics ()->workers_lost, worker->service), 1);
        s_worker_remove (self, worker, "missed heartbeats");
    }
    zlistx_destroy (&dead);
    s_dispatch (self);
    return 0;
}

/*  --------------------------------------------------------------------------
    Public API */

orchestrator_broker_t *
orchestrator_broker_new (zloop_t *loop, const orchestrator_broker_config_t *config, cv_error_t *err)
{
    assert (loop && config && config->log);
    assert (config->heartbeat_ms > 0 && config->liveness > 0 && config->max_attempts > 0);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (router, 0);
    zsock_set_router_mandatory (router, 0);
    if (zsock_bind (router, "%s", config->endpoint) < 0) {
        cv_error_set (err, CV_ERR_UNAVAILABLE, "broker_endpoint", "cannot bind broker %s: %s", config->endpoint,
                      zmq_strerror (zmq_errno ()));
        zsock_destroy (&router);
        return NULL;
    }
    orchestrator_broker_t *self = cv_calloc (1, sizeof *self);
    self->config = *config;
    self->loop = loop;
    self->router = router;
    self->endpoint = zsock_last_endpoint (router);
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, (zhashx_destructor_fn *) s_worker_destroy);
    self->jobs = zlistx_new ();
    zloop_reader (loop, router, s_router_readable, self);
    int tick = config->heartbeat_ms / 10;
    tick = tick < 10 ? 10 : tick > 100 ? 100 : tick;
    self->timer = zloop_timer (loop, (size_t) tick, 0, s_tick, self);
    return self;
}

void
orchestrator_broker_destroy (orchestrator_broker_t **self_p)
{
    assert (self_p);
    orchestrator_broker_t *self = *self_p;
    if (!self)
        return;
    zloop_reader_end (self->loop, self->router);
    zloop_timer_end (self->loop, self->timer);
    for (job_t *job = zlistx_first (self->jobs); job; job = zlistx_next (self->jobs))
        s_job_destroy (&job);
    zlistx_destroy (&self->jobs);
    zhashx_destroy (&self->workers);
    zsock_destroy (&self->router);
    zstr_free (&self->endpoint);
    free (self);
    *self_p = NULL;
}

const char *
orchestrator_broker_endpoint (const orchestrator_broker_t *self)
{
    return self->endpoint;
}

void
orchestrator_broker_submit (orchestrator_broker_t *self, const char *service, const char *job_id, cv_arena_t **arena_p,
                            cv_envelope_t *envelope, uint32_t max_attempts, orchestrator_broker_done_fn *done,
                            void *owner)
{
    assert (arena_p && *arena_p && envelope && done && owner);
    job_t *job = cv_calloc (1, sizeof *job);
    job->job_id = cv_strdup (job_id);
    job->service = cv_strdup (service);
    job->done = done;
    job->owner = owner;
    job->arena = *arena_p;
    *arena_p = NULL;
    job->envelope = envelope;
    job->attempt = 1;
    job->max_attempts =
        max_attempts && max_attempts < self->config.max_attempts ? max_attempts : self->config.max_attempts;
    zlistx_add_end (self->jobs, job);
    s_dispatch (self);
}

void
orchestrator_broker_cancel (orchestrator_broker_t *self, void *owner)
{
    job_t *job = zlistx_first (self->jobs);
    while (job) {
        if (job->owner == owner) {
            if (job->worker && job->worker->in_flight > 0)
                job->worker->in_flight--;
            zlistx_detach_cur (self->jobs);
            s_job_destroy (&job);
            job = zlistx_first (self->jobs); /* detaching leaves no cursor: start again */
        } else
            job = zlistx_next (self->jobs);
    }
}

size_t
orchestrator_broker_workers (const orchestrator_broker_t *self, const char *service)
{
    size_t count = 0;
    zhashx_t *workers = self->workers;
    for (worker_t *worker = zhashx_first (workers); worker; worker = zhashx_next (workers))
        if (streq (worker->service, service))
            count++;
    return count;
}

size_t
orchestrator_broker_jobs (const orchestrator_broker_t *self)
{
    return zlistx_size (self->jobs);
}

size_t
orchestrator_broker_queued (const orchestrator_broker_t *self, const char *service)
{
    size_t count = 0;
    for (job_t *job = zlistx_first (self->jobs); job; job = zlistx_next (self->jobs))
        if (!job->worker && streq (job->service, service))
            count++;
    return count;
}
