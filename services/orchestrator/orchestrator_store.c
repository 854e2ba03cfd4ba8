/* The orchestrator's PostgreSQL store: requests, checkpoints, actions, recovery look-ups. */
#include "orchestrator_store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_alloc.h"
#include "cv_context.h"
#include "cv_migrations.h"
#include "cv_msgpack.h"
#include "cv_pg.h"
#include "cv_pgpipe.h"
#include "orchestrator_metrics.h"

/* The statements, prepared on every connection; the enum indexes s_statements. */
enum {
    SQL_CREATE,
    SQL_CREATE_KEYED,
    SQL_CHECKPOINT,
    SQL_LAST_CHECKPOINT,
    SQL_FAIL,
    SQL_LOAD,
    SQL_UNFINISHED,
    SQL_PING,
    SQL_DECIDE,
    SQL_APPROVALS,
    SQL_EXPIRED,
    SQL_PENDING,
    SQL_COUNT
};

static const cv_pgpipe_statement_t s_statements[SQL_COUNT] = {
    /* A request without an idempotency key: nothing to look for. One row, as SQL_CREATE_KEYED's. */
    [SQL_CREATE] = {"create_request",
                    "INSERT INTO requests (id, user_id, session_id, text, status, deadline_ms, trace_id,"
                    " budget_micros, max_attempts, context, created_at, parent_span_id)"
                    " VALUES ($1, $2, NULLIF($3, ''), $4, 'running', $5::bigint, $6, NULLIF($7, '')::bigint, $8::int,"
                    " NULLIF($9, '')::jsonb, to_timestamp($10::double precision / 1e6), NULLIF($11, ''))"
                    " RETURNING id, true",
                    11, false},
    /* One row: the id and whether this statement recorded it (false: the idempotency key's first
       request). No row: a concurrent request with the same key is not committed yet. */
    [SQL_CREATE_KEYED] =
        {"create_keyed_request",
         "WITH recorded AS ("
         "  INSERT INTO requests (id, user_id, session_id, text, status, idempotency_key, deadline_ms,"
         "   trace_id, budget_micros, max_attempts, context, created_at, parent_span_id)"
         "  VALUES ($1, $2, NULLIF($3, ''), $4, 'running', NULLIF($5, ''), $6::bigint, $7,"
         "   NULLIF($8, '')::bigint, $9::int, NULLIF($10, '')::jsonb, to_timestamp($11::double precision / 1e6),"
         "   NULLIF($12, ''))"
         "  ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
         "  RETURNING id)"
         " SELECT id, true FROM recorded"
         " UNION ALL SELECT id, false FROM requests"
         "  WHERE user_id = $2 AND idempotency_key = NULLIF($5, '') AND NOT EXISTS (SELECT FROM recorded)",
         12, false},
    /* A checkpoint; with the decide stage's the decision's actions, recorded ($6), and with the
       execute stage's what became of them ($7), once: a performed action's row is final. The
       request's row is left alone. */
    [SQL_CHECKPOINT] = {"checkpoint",
                        "WITH recorded AS ("
                        "  INSERT INTO actions (request_id, action_id, kind, params)"
                        "  SELECT $1, a->>'id', a->>'kind', a->'params'"
                        "  FROM jsonb_array_elements(NULLIF($6, '')::jsonb) a"
                        "  ON CONFLICT DO NOTHING RETURNING 1),"
                        " performed AS ("
                        "  UPDATE actions SET status = p->>'status', result = p->'result',"
                        "   reason = NULLIF(p->>'reason', ''), replayed = (p->>'replayed')::boolean,"
                        "   attempts = (p->>'attempts')::int, performed_at = now(), updated_at = now()"
                        "  FROM jsonb_array_elements(NULLIF($7, '')::jsonb) p"
                        "  WHERE actions.request_id = $1 AND actions.action_id = p->>'id'"
                        "   AND actions.status = 'recorded' RETURNING 1)"
                        " INSERT INTO checkpoints (request_id, seq, stage, body, elapsed_us, attempts, started_at)"
                        " VALUES ($1, $2::int, $3, $4::bytea, $5::bigint, $8::int,"
                        "  to_timestamp(NULLIF($9, '')::double precision / 1e6)) ON CONFLICT DO NOTHING",
                        9, false},
    /* The last checkpoint, and the request done with it ($6: done, pending_approval, over_budget,
       out_of_attempts or stage_failed, whose stage's error is $9). */
    [SQL_LAST_CHECKPOINT] =
        {"last_checkpoint",
         "WITH checkpoint AS ("
         "  INSERT INTO checkpoints (request_id, seq, stage, body, elapsed_us, attempts, started_at)"
         "  VALUES ($1, $2::int, $3, $4::bytea, $5::bigint, $7::int,"
         "   to_timestamp(NULLIF($10, '')::double precision / 1e6)) ON CONFLICT DO NOTHING"
         "  RETURNING 1)"
         " UPDATE requests SET status = $6, lost_attempts = $8::int, error = NULLIF($9, ''),"
         "  record = $11::jsonb, updated_at = now(), finished_at = to_timestamp($12::double precision / 1e6)"
         " WHERE id = $1 AND status = 'running'",
         12, false},
    [SQL_FAIL] = {"fail_request",
                  "UPDATE requests SET status = 'failed', error = $2, lost_attempts = $3::int, record = $4::jsonb,"
                  " finished_at = to_timestamp($5::double precision / 1e6), updated_at = now() WHERE id = $1",
                  5, false},
    /* The request's row repeated on each of its checkpoints (one row with NULL checkpoint columns
       when it has none); binary results, so every column but the body is cast to text. */
    [SQL_LOAD] = {"load_request",
                  "SELECT r.id, r.trace_id, r.user_id, coalesce(r.session_id, ''), r.text,"
                  " coalesce(r.idempotency_key, ''), r.deadline_ms::text, r.status, coalesce(r.error, ''),"
                  " (extract(epoch FROM r.finished_at - r.created_at) * 1000)::text,"
                  " c.seq::text, c.body, c.elapsed_us::text, c.attempts::text,"
                  " to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                  " coalesce(r.parent_id, ''), coalesce(r.approval, ''), coalesce(r.approver, ''),"
                  " coalesce((SELECT f.id FROM requests f WHERE f.parent_id = r.id), ''),"
                  " coalesce((SELECT f.approval FROM requests f WHERE f.parent_id = r.id), ''),"
                  " coalesce((SELECT f.approver FROM requests f WHERE f.parent_id = r.id), ''),"
                  " coalesce((SELECT to_char(f.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                  "  FROM requests f WHERE f.parent_id = r.id), ''),"
                  " coalesce(r.budget_micros::text, ''), r.max_attempts::text, r.lost_attempts::text,"
                  " coalesce(r.context::text, ''), coalesce(r.parent_span_id, ''),"
                  " round(extract(epoch FROM r.created_at) * 1e6)::bigint::text,"
                  " round(extract(epoch FROM c.started_at) * 1e6)::bigint::text"
                  " FROM requests r LEFT JOIN checkpoints c ON c.request_id = r.id"
                  " WHERE r.id = $1 ORDER BY c.seq",
                  1, true},
    [SQL_UNFINISHED] = {"unfinished_requests",
                        "SELECT id FROM requests WHERE status = 'running' ORDER BY created_at LIMIT $1::bigint", 1,
                        false},
    [SQL_PING] = {"ping", "SELECT 1", 0, false},
    /* A person's decision on a request pending approval ($1), in one statement: its waiting
       actions marked $3 (approved or rejected) by $4, the request done, and its follow-up $2
       recorded with the first three checkpoints (with no attempts: the follow-up counts its own)
       and the action rows copied. One row: the
       follow-up's id, its approval and whether this statement made it, or '' when there is no
       request $1 at all; no row: it does not wait, or another decision on it committed while
       this one waited for the row's lock (its follow-up is not in this statement's snapshot).
       One orchestrator sends every decision on a request through one connection, in order, so
       the second sees the first; two orchestrators could meet this, and the caller then says
       to ask again. */
    [SQL_DECIDE] = {"decide_approval",
                    "WITH parent AS ("
                    "  SELECT id, user_id, session_id, text, trace_id, budget_micros, max_attempts, context"
                    "  FROM requests"
                    "  WHERE id = $1 AND status = 'pending_approval' FOR UPDATE),"
                    " decided AS ("
                    "  UPDATE actions SET status = $3, approver = $4, decided_at = now(), updated_at = now()"
                    "  WHERE request_id = $1 AND status = 'pending_approval' AND EXISTS (SELECT FROM parent)"
                    "  RETURNING 1),"
                    " closed AS ("
                    "  UPDATE requests SET status = 'done', updated_at = now()"
                    "  WHERE id = $1 AND EXISTS (SELECT FROM parent) RETURNING 1),"
                    " follow_up AS ("
                    "  INSERT INTO requests (id, user_id, session_id, text, status, deadline_ms, trace_id,"
                    "   parent_id, approval, approver, budget_micros, max_attempts, context, parent_span_id)"
                    "  SELECT $2, user_id, session_id, text, 'running', $5::bigint, trace_id, id, $3, $4,"
                    "   budget_micros, max_attempts, context, $6"
                    "  FROM parent RETURNING id, approval),"
                    " copied AS ("
                    "  INSERT INTO checkpoints (request_id, seq, stage, body, elapsed_us, attempts)"
                    "  SELECT $2, seq, stage, body, elapsed_us, 0 FROM checkpoints"
                    "  WHERE request_id = $1 AND seq <= 3 AND EXISTS (SELECT FROM follow_up) RETURNING 1),"
                    " copied_actions AS ("
                    "  INSERT INTO actions (request_id, action_id, kind, params, approver, decided_at)"
                    "  SELECT $2, action_id, kind, params, $4, now() FROM actions"
                    "  WHERE request_id = $1 AND EXISTS (SELECT FROM follow_up) RETURNING 1)"
                    " SELECT id, approval, true FROM follow_up"
                    " UNION ALL SELECT id, approval, false FROM requests"
                    "  WHERE parent_id = $1 AND NOT EXISTS (SELECT FROM follow_up)"
                    " UNION ALL SELECT '', '', false WHERE NOT EXISTS (SELECT FROM requests WHERE id = $1)",
                    6, false},
    /* What waits for a person, oldest first. */
    [SQL_APPROVALS] = {"approvals",
                       "SELECT a.request_id, a.action_id, a.kind, a.params::text, r.user_id,"
                       " to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                       " FROM actions a JOIN requests r ON r.id = a.request_id"
                       " WHERE r.status = 'pending_approval' AND a.status = 'pending_approval'"
                       " ORDER BY r.finished_at, a.request_id, a.action_id LIMIT $1::bigint",
                       1, false},
    /* Requests that have waited for a person longer than $1 seconds. */
    [SQL_EXPIRED] = {"expired_approvals",
                     "SELECT id FROM requests WHERE status = 'pending_approval'"
                     " AND finished_at < now() - make_interval(secs => $1::double precision)"
                     " ORDER BY finished_at LIMIT $2::bigint",
                     2, false},
    /* How many wait for a person, and the oldest's wait in seconds (0 when none). */
    [SQL_PENDING] = {"pending_approvals",
                     "SELECT count(*), coalesce(extract(epoch FROM now() - min(finished_at)), 0)::double precision"
                     " FROM requests WHERE status = 'pending_approval'",
                     0, false},
};

/* The columns of SQL_LOAD. */
enum {
    LOAD_ID,
    LOAD_TRACE_ID,
    LOAD_USER_ID,
    LOAD_SESSION_ID,
    LOAD_TEXT,
    LOAD_IDEMPOTENCY_KEY,
    LOAD_DEADLINE,
    LOAD_STATUS,
    LOAD_ERROR,
    LOAD_TOTAL_MS,
    LOAD_SEQ,
    LOAD_BODY,
    LOAD_ELAPSED_US,
    LOAD_ATTEMPTS,
    LOAD_AT,
    LOAD_PARENT_ID,
    LOAD_APPROVAL,
    LOAD_APPROVER,
    LOAD_FOLLOW_UP_ID,
    LOAD_FOLLOW_UP_APPROVAL,
    LOAD_FOLLOW_UP_APPROVER,
    LOAD_FOLLOW_UP_AT,
    LOAD_BUDGET,
    LOAD_MAX_ATTEMPTS,
    LOAD_LOST_ATTEMPTS,
    LOAD_CONTEXT,
    LOAD_PARENT_SPAN_ID,
    LOAD_CREATED_US,
    LOAD_STARTED_US
};

struct _orchestrator_store_t {
    orchestrator_store_config_t config;
    char *url;
    cv_pgpipe_t **pipes;
    size_t pipe_count;
};

/* One operation in flight: whom to tell, and what the answer needs. */
typedef struct {
    orchestrator_store_t *store;
    int statement;
    orchestrator_store_fn *fn;
    void *owner;
    char id[CV_NAME_MAX_BYTES + 1]; /* load: the request asked for */
} operation_t;

orchestrator_store_t *
orchestrator_store_new (zloop_t *loop, const orchestrator_store_config_t *config)
{
    assert (loop && config && config->url && config->application_name && config->log);
    orchestrator_store_t *self = cv_calloc (1, sizeof *self);
    self->config = *config;
    self->url = cv_strdup (config->url);
    self->config.url = self->url;
    self->pipe_count = config->connections ? config->connections : 2;
    self->pipes = cv_calloc (self->pipe_count, sizeof *self->pipes);
    for (size_t i = 0; i < self->pipe_count; i++) {
        char name[CV_NAME_MAX_BYTES + 16];
        snprintf (name, sizeof name, "%s-%zu", config->application_name, i + 1);
        cv_pgpipe_config_t pipe = {.url = self->url,
                                   .application_name = name,
                                   .statements = s_statements,
                                   .statement_count = SQL_COUNT,
                                   .timeout_ms = config->timeout_ms,
                                   .max_batch = 256,
                                   .max_queued = config->max_queued ? config->max_queued : 4096,
                                   .log = config->log,
                                   .transaction_runs = cv_metric_with (orchestrator_metrics ()->store_batch),
                                   .commit_seconds = cv_metric_with (orchestrator_metrics ()->store_commit_seconds)};
        self->pipes[i] = cv_pgpipe_new (loop, &pipe);
    }
    return self;
}

void
orchestrator_store_destroy (orchestrator_store_t **self_p)
{
    assert (self_p);
    orchestrator_store_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->pipe_count; i++)
        cv_pgpipe_destroy (&self->pipes[i]);
    free (self->pipes);
    free (self->url);
    free (self);
    *self_p = NULL;
}

int
orchestrator_store_migrate (const char *url, const char *application_name, cv_error_t *err)
{
    cv_pg_t *pg = cv_pg_new (url, application_name, err);
    if (!pg)
        return -1;
    int applied;
    int rc = cv_migrations_apply (pg, &applied, err);
    cv_pg_destroy (&pg);
    return rc;
}

void
orchestrator_store_abort (orchestrator_store_t *self, const char *why)
{
    for (size_t i = 0; i < self->pipe_count; i++)
        cv_pgpipe_abort (self->pipes[i], why);
}

/* The connection a request's operations go to: always the same one, so they commit in order. */
static cv_pgpipe_t *
s_pipe_of (orchestrator_store_t *self, const char *request_id)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const char *c = request_id; *c; c++)
        hash = (hash ^ (uint8_t) *c) * 16777619u;
    return self->pipes[hash % self->pipe_count];
}

/*  --------------------------------------------------------------------------
    Answers */

static void
s_answer_error (operation_t *operation, const cv_error_t *err)
{
    orchestrator_store_answer_t answer = {.err = err};
    operation->fn (operation->owner, &answer);
}

static int
s_replay_checkpoint (orchestrator_request_t *request, const cv_pg_result_t *rows, int row, cv_error_t *err)
{
    int seq = (int) cv_pg_result_int (rows, row, LOAD_SEQ);
    /* the orchestrator's own execute result (the actions held for approval) is made again from
       the decision, as it was the first time */
    if (seq == REQUEST_EXECUTE + 1 && orchestrator_request_state (request) == REQUEST_RESPOND
        && orchestrator_request_result (request, REQUEST_EXECUTE)) {
        orchestrator_request_note_checkpoint (request, REQUEST_EXECUTE, cv_pg_result_text (rows, row, LOAD_AT));
        return 0;
    }
    /* the reply of a request stopped for its attempts, or because a stage failed, follows the last
       stage that answered: the stage that used them up, or failed, left no checkpoint; its
       attempts are the row's lost ones, its error the row's */
    if (seq == REQUEST_RESPOND + 1 && orchestrator_request_state (request) < REQUEST_RESPOND) {
        if (strcmp (cv_pg_result_text (rows, row, LOAD_STATUS), "stage_failed") == 0)
            (void) orchestrator_request_stop_for_stage_failure (request, cv_pg_result_text (rows, row, LOAD_ERROR));
        else
            (void) orchestrator_request_stop_for_attempts (request); /* else out of order, below */
    }
    if (seq != (int) orchestrator_request_state (request) + 1)
        return cv_error_set (err, CV_ERR_INTERNAL, "seq", "request %s: checkpoint %d out of order",
                             orchestrator_request_id (request), seq);
    if (!cv_pg_result_is_null (rows, row, LOAD_STARTED_US)) /* the stage as it was first sent */
        orchestrator_request_set_stage_started_unix_us (request, seq - 1,
                                                        (uint64_t) cv_pg_result_int (rows, row, LOAD_STARTED_US));
    size_t size;
    const uint8_t *body = cv_pg_result_bytes (rows, row, LOAD_BODY, &size);
    cv_envelope_t *result = cv_envelope_unpack (body, size, err);
    if (!result
        || orchestrator_request_accept (request, &result, body, size, cv_pg_result_int (rows, row, LOAD_ELAPSED_US),
                                        (uint32_t) cv_pg_result_int (rows, row, LOAD_ATTEMPTS), err)) {
        cv_error_prefix (err, "request %s checkpoint %d", orchestrator_request_id (request), seq);
        return -1;
    }
    orchestrator_request_note_checkpoint (request, seq - 1, cv_pg_result_text (rows, row, LOAD_AT));
    return 0;
}

/* Whether a stored context is what orchestrator_api_context makes: a list of at most
   CV_CONTEXT_TURNS_MAX {"role": "user" or "assistant", "content": text} (the row may have been
   written by another hand: the responder must never be sent a turn without them). */
static bool
s_context_valid (const json_t *turns)
{
    if (!json_is_array (turns) || json_array_size (turns) > CV_CONTEXT_TURNS_MAX)
        return false;
    size_t i;
    json_t *turn;
    json_array_foreach (turns, i, turn) {
        const char *role = json_string_value (json_object_get (turn, "role"));
        const char *content = json_string_value (json_object_get (turn, "content"));
        if (!role || (!streq (role, "user") && !streq (role, "assistant")) || !content || !*content
            || strlen (content) > CV_REPLY_MAX_BYTES)
            return false;
    }
    return true;
}

static orchestrator_request_t *
s_rebuild (const cv_pg_result_t *rows, const char *id, cv_error_t *err)
{
    if (cv_pg_result_rows (rows) == 0) {
        cv_error_set (err, CV_ERR_INVALID, "id", "no request %s", id);
        return NULL;
    }
    orchestrator_request_t *request = orchestrator_request_new (
        cv_pg_result_text (rows, 0, LOAD_ID), cv_pg_result_text (rows, 0, LOAD_TRACE_ID),
        cv_pg_result_text (rows, 0, LOAD_USER_ID), cv_pg_result_text (rows, 0, LOAD_SESSION_ID),
        cv_pg_result_text (rows, 0, LOAD_TEXT), cv_pg_result_text (rows, 0, LOAD_IDEMPOTENCY_KEY),
        (uint64_t) cv_pg_result_int (rows, 0, LOAD_DEADLINE));
    if (!cv_pg_result_is_null (rows, 0, LOAD_TOTAL_MS))
        orchestrator_request_set_total_ms (request, cv_pg_result_real (rows, 0, LOAD_TOTAL_MS));
    const char *budget = cv_pg_result_text (rows, 0, LOAD_BUDGET);
    orchestrator_limits_t limits = {.budgeted = *budget != '\0',
                                    .budget_micros = *budget ? strtoull (budget, NULL, 10) : 0,
                                    .max_attempts = (uint32_t) cv_pg_result_int (rows, 0, LOAD_MAX_ATTEMPTS)};
    orchestrator_request_set_limits (request, &limits);
    orchestrator_request_note_lost_attempts (request, (uint32_t) cv_pg_result_int (rows, 0, LOAD_LOST_ATTEMPTS));
    orchestrator_request_set_created_unix_us (request, (uint64_t) cv_pg_result_int (rows, 0, LOAD_CREATED_US));
    orchestrator_request_set_parent_span_id (request, cv_pg_result_text (rows, 0, LOAD_PARENT_SPAN_ID));
    const char *context = cv_pg_result_text (rows, 0, LOAD_CONTEXT);
    if (*context) {
        json_t *turns = json_loads (context, 0, NULL);
        if (!s_context_valid (turns)) {
            json_decref (turns);
            orchestrator_request_destroy (&request);
            cv_error_set (err, CV_ERR_INTERNAL, "context",
                          "request %s: its stored context is not a list of at most %d user and assistant turns with "
                          "text",
                          id, CV_CONTEXT_TURNS_MAX);
            return NULL;
        }
        orchestrator_request_set_context (request, turns);
        json_decref (turns);
    }
    const char *parent_id = cv_pg_result_text (rows, 0, LOAD_PARENT_ID);
    if (*parent_id)
        orchestrator_request_set_follow_up_of (request, parent_id,
                                               strcmp (cv_pg_result_text (rows, 0, LOAD_APPROVAL), "approved") == 0
                                                   ? REQUEST_APPROVAL_APPROVED
                                                   : REQUEST_APPROVAL_REJECTED,
                                               cv_pg_result_text (rows, 0, LOAD_APPROVER));
    for (int row = 0; row < cv_pg_result_rows (rows); row++)
        if (!cv_pg_result_is_null (rows, row, LOAD_SEQ) && s_replay_checkpoint (request, rows, row, err)) {
            orchestrator_request_destroy (&request);
            return NULL;
        }
    if (strcmp (cv_pg_result_text (rows, 0, LOAD_STATUS), "failed") == 0)
        orchestrator_request_fail (request, cv_pg_result_text (rows, 0, LOAD_ERROR));
    if (*cv_pg_result_text (rows, 0, LOAD_FOLLOW_UP_ID))
        orchestrator_request_note_follow_up (
            request, cv_pg_result_text (rows, 0, LOAD_FOLLOW_UP_ID),
            strcmp (cv_pg_result_text (rows, 0, LOAD_FOLLOW_UP_APPROVAL), "approved") == 0 ? REQUEST_APPROVAL_APPROVED
                                                                                           : REQUEST_APPROVAL_REJECTED,
            cv_pg_result_text (rows, 0, LOAD_FOLLOW_UP_APPROVER), cv_pg_result_text (rows, 0, LOAD_FOLLOW_UP_AT));
    return request;
}

static void
s_done (void *arg, const cv_pg_result_t *result, const cv_error_t *err)
{
    operation_t *operation = arg;
    if (err) {
        s_answer_error (operation, err);
        free (operation);
        return;
    }
    orchestrator_store_answer_t answer = {.err = NULL};
    cv_error_t failure;
    switch (operation->statement) {
    case SQL_CREATE:
    case SQL_CREATE_KEYED:
        if (cv_pg_result_rows (result) != 1)
            answer.err = (cv_error_set (&failure, CV_ERR_UNAVAILABLE, NULL,
                                        "a request with the same idempotency key is being recorded; retry"),
                          &failure);
        else if (!cv_pg_result_bool (result, 0, 1))
            answer.existing_id = cv_pg_result_text (result, 0, 0);
        break;
    case SQL_LOAD:
        answer.request = s_rebuild (result, operation->id, &failure);
        if (!answer.request)
            answer.err = &failure;
        break;
    case SQL_DECIDE:
        if (cv_pg_result_rows (result) != 1)
            answer.err = (cv_error_set (&failure, CV_ERR_INVALID, "status",
                                        "request %s has no action waiting for approval (or another decision on it is "
                                        "being recorded)",
                                        operation->id),
                          &failure);
        else if (!*cv_pg_result_text (result, 0, 0))
            answer.err = (cv_error_set (&failure, CV_ERR_INVALID, "id", "no request %s", operation->id), &failure);
        else {
            answer.existing_id = cv_pg_result_text (result, 0, 0);
            answer.approval = cv_pg_result_text (result, 0, 1);
            answer.made = cv_pg_result_bool (result, 0, 2);
        }
        break;
    case SQL_APPROVALS:
        answer.approvals = json_array ();
        for (int i = 0; i < cv_pg_result_rows (result); i++) {
            json_error_t parse;
            json_t *params = json_loads (cv_pg_result_text (result, i, 3), 0, &parse);
            json_array_append_new (
                answer.approvals,
                json_pack ("{s:s, s:s, s:s, s:o, s:s, s:s}", "request_id", cv_pg_result_text (result, i, 0),
                           "action_id", cv_pg_result_text (result, i, 1), "kind", cv_pg_result_text (result, i, 2),
                           "params", params ? params : json_object (), "user_id", cv_pg_result_text (result, i, 4),
                           "waiting_since", cv_pg_result_text (result, i, 5)));
        }
        break;
    case SQL_PENDING:
        answer.pending = strtoull (cv_pg_result_text (result, 0, 0), NULL, 10);
        answer.oldest_waiting_s = strtod (cv_pg_result_text (result, 0, 1), NULL);
        break;
    case SQL_EXPIRED:
    case SQL_UNFINISHED: {
        int count = cv_pg_result_rows (result);
        answer.ids = cv_calloc ((size_t) count + 1, sizeof (char *));
        for (int i = 0; i < count; i++)
            answer.ids[i] = cv_pg_result_text (result, i, 0);
        break;
    }
    default:
        break;
    }
    operation->fn (operation->owner, &answer);
    orchestrator_request_destroy (&answer.request);
    free (answer.ids);
    json_decref (answer.approvals);
    free (operation);
}

/*  --------------------------------------------------------------------------
    Operations */

static operation_t *
s_operation_new (orchestrator_store_t *self, int statement, orchestrator_store_fn *fn, void *owner)
{
    assert (fn);
    operation_t *operation = cv_calloc (1, sizeof *operation);
    operation->store = self;
    operation->statement = statement;
    operation->fn = fn;
    operation->owner = owner;
    return operation;
}

static int
s_run (cv_pgpipe_t *pipe, operation_t *operation, const char *const *values, const int *lengths, const int *formats,
       cv_error_t *err)
{
    if (cv_pgpipe_run (pipe, (size_t) operation->statement, values, lengths, formats, s_done, operation, err)) {
        free (operation);
        return -1;
    }
    return 0;
}

int
orchestrator_store_create (orchestrator_store_t *self, const orchestrator_request_t *request, orchestrator_store_fn *fn,
                           void *owner, cv_error_t *err)
{
    char deadline[24], budget[24] = "", max_attempts[16];
    snprintf (deadline, sizeof deadline, "%llu", (unsigned long long) orchestrator_request_deadline (request));
    const orchestrator_limits_t *limits = orchestrator_request_limits (request);
    if (limits->budgeted)
        snprintf (budget, sizeof budget, "%llu", (unsigned long long) limits->budget_micros);
    snprintf (max_attempts, sizeof max_attempts, "%u", limits->max_attempts);
    char created[24];
    snprintf (created, sizeof created, "%llu", (unsigned long long) orchestrator_request_created_unix_us (request));
    const char *key = orchestrator_request_idempotency_key (request);
    char *context = orchestrator_request_context (request)
                        ? json_dumps (orchestrator_request_context (request), JSON_COMPACT)
                        : NULL;
    const char *keyed[] = {orchestrator_request_id (request),
                           orchestrator_request_user_id (request),
                           orchestrator_request_session_id (request),
                           orchestrator_request_text (request),
                           key,
                           deadline,
                           orchestrator_request_trace_id (request),
                           budget,
                           max_attempts,
                           context ? context : "",
                           created,
                           orchestrator_request_parent_span_id (request)};
    const char *plain[] = {keyed[0], keyed[1],     keyed[2], keyed[3], deadline, keyed[6],
                           budget,   max_attempts, keyed[9], created,  keyed[11]};
    int statement = *key ? SQL_CREATE_KEYED : SQL_CREATE;
    int rc = s_run (s_pipe_of (self, orchestrator_request_id (request)), s_operation_new (self, statement, fn, owner),
                    *key ? keyed : plain, NULL, NULL, err);
    free (context);
    return rc;
}

/* The decision's actions as a JSON array for the actions table; NULL when it has none. */
static char *
s_actions_json (const Conveyor__V1__Decision *decision)
{
    if (!decision || decision->n_actions == 0)
        return NULL;
    json_t *actions = json_array ();
    for (size_t i = 0; i < decision->n_actions; i++) {
        const Conveyor__V1__Action *action = decision->actions[i];
        cv_error_t err;
        json_t *params = cv_msgpack_unpack (action->params.data, action->params.len, "params", &err);
        json_array_append_new (actions, json_pack ("{s:s, s:s, s:o}", "id", action->id, "kind", action->kind, "params",
                                                   params ? params : json_object ()));
    }
    char *text = json_dumps (actions, JSON_COMPACT);
    json_decref (actions);
    return text;
}

/* The executor's results as a JSON array for the actions table; NULL when there are none. */
static char *
s_performed_json (const Conveyor__V1__ActionResults *performed)
{
    if (!performed || performed->n_results == 0)
        return NULL;
    json_t *rows = json_array ();
    for (size_t i = 0; i < performed->n_results; i++) {
        const Conveyor__V1__ActionResult *result = performed->results[i];
        cv_error_t err;
        json_t *answer = result->result.len
                             ? cv_msgpack_unpack (result->result.data, result->result.len, "result", &err)
                             : json_object ();
        json_array_append_new (rows, json_pack ("{s:s, s:s, s:o, s:s, s:b, s:i}", "id", result->action_id, "status",
                                                cv_context_action_outcome_name (result->outcome), "result",
                                                answer ? answer : json_object (), "reason", result->reason, "replayed",
                                                result->replayed, "attempts", (int) result->attempts));
    }
    char *text = json_dumps (rows, JSON_COMPACT);
    json_decref (rows);
    return text;
}

/* The request's decision record as JSON text, for requests.record. */
static char *
s_record_json (const orchestrator_request_t *request)
{
    json_t *record = orchestrator_request_record (request);
    char *text = json_dumps (record, JSON_COMPACT);
    json_decref (record);
    return text;
}

int
orchestrator_store_checkpoint (orchestrator_store_t *self, const orchestrator_request_t *request, int stage,
                               orchestrator_store_fn *fn, void *owner, cv_error_t *err)
{
    size_t size;
    const uint8_t *body = orchestrator_request_result_bytes (request, stage, &size);
    assert (body);
    char seq[8], elapsed[24], attempts[16], lost[16];
    snprintf (seq, sizeof seq, "%d", stage + 1);
    snprintf (elapsed, sizeof elapsed, "%lld", (long long) orchestrator_request_stage_us (request, stage));
    snprintf (attempts, sizeof attempts, "%u", orchestrator_request_stage_attempts (request, stage));
    snprintf (lost, sizeof lost, "%u", orchestrator_request_lost_attempts (request));
    char started[24] = ""; /* "": not known (NULL) */
    if (orchestrator_request_stage_started_unix_us (request, stage))
        snprintf (started, sizeof started, "%llu",
                  (unsigned long long) orchestrator_request_stage_started_unix_us (request, stage));
    const cv_envelope_t *result = orchestrator_request_result (request, stage);
    char *actions = s_actions_json (stage == REQUEST_DECIDE ? result->decision : NULL);
    char *performed = s_performed_json (stage == REQUEST_EXECUTE ? result->action_results : NULL);
    /* The row changes only with the last one, whenever it is written: a failure is written by
       orchestrator_store_fail, after the checkpoints. */
    bool last = stage == REQUEST_STAGES - 1;
    char *record = last ? s_record_json (request) : NULL;
    char finished[24]; /* on the clock created_at was read on, the orchestrator's */
    snprintf (finished, sizeof finished, "%llu", (unsigned long long) cv_trace_wall_us (zclock_usecs ()));
    /* $1..$5 alike; then SQL_CHECKPOINT's actions, outcomes, attempts and the stage's start, or
       SQL_LAST_CHECKPOINT's status, attempts, the lost attempts, the error of a stage that failed
       and the stage's start */
    const char *stage_error = orchestrator_request_failed_stage (request) ? orchestrator_request_error (request) : "";
    const char *values[] = {orchestrator_request_id (request),
                            seq,
                            orchestrator_request_stage_name ((orchestrator_state_t) stage),
                            (const char *) body,
                            elapsed,
                            last      ? orchestrator_request_status (request)
                            : actions ? actions
                                      : "",
                            last        ? attempts
                            : performed ? performed
                                        : "",
                            last ? lost : attempts,
                            last ? stage_error : started,
                            started,
                            record ? record : "",
                            finished};
    int lengths[] = {0, 0, 0, (int) size, 0, 0, 0, 0, 0, 0, 0, 0};
    int formats[] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    int statement = last ? SQL_LAST_CHECKPOINT : SQL_CHECKPOINT;
    int rc = s_run (s_pipe_of (self, orchestrator_request_id (request)), s_operation_new (self, statement, fn, owner),
                    values, lengths, formats, err);
    free (actions);
    free (performed);
    free (record);
    return rc;
}

int
orchestrator_store_fail (orchestrator_store_t *self, const orchestrator_request_t *request, orchestrator_store_fn *fn,
                         void *owner, cv_error_t *err)
{
    const char *error = orchestrator_request_error (request);
    char lost[16];
    snprintf (lost, sizeof lost, "%u", orchestrator_request_lost_attempts (request));
    char *record = s_record_json (request);
    char finished[24];
    snprintf (finished, sizeof finished, "%llu", (unsigned long long) cv_trace_wall_us (zclock_usecs ()));
    const char *values[] = {orchestrator_request_id (request), error ? error : "failed", lost, record, finished};
    int rc = s_run (s_pipe_of (self, orchestrator_request_id (request)), s_operation_new (self, SQL_FAIL, fn, owner),
                    values, NULL, NULL, err);
    free (record);
    return rc;
}

int
orchestrator_store_load (orchestrator_store_t *self, const char *id, orchestrator_store_fn *fn, void *owner,
                         cv_error_t *err)
{
    operation_t *operation = s_operation_new (self, SQL_LOAD, fn, owner);
    snprintf (operation->id, sizeof operation->id, "%s", id);
    const char *values[] = {id};
    return s_run (s_pipe_of (self, id), operation, values, NULL, NULL, err);
}

int
orchestrator_store_unfinished (orchestrator_store_t *self, size_t limit, orchestrator_store_fn *fn, void *owner,
                               cv_error_t *err)
{
    char text[24];
    snprintf (text, sizeof text, "%zu", limit);
    const char *values[] = {text};
    return s_run (self->pipes[0], s_operation_new (self, SQL_UNFINISHED, fn, owner), values, NULL, NULL, err);
}

int
orchestrator_store_decide (orchestrator_store_t *self, const char *parent_id, const char *follow_up_id,
                           orchestrator_approval_t approval, const char *approver, uint64_t deadline_ms,
                           orchestrator_store_fn *fn, void *owner, cv_error_t *err)
{
    assert (approval != REQUEST_APPROVAL_NONE);
    char deadline[24];
    snprintf (deadline, sizeof deadline, "%llu", (unsigned long long) deadline_ms);
    char parent_span[CV_SPAN_ID_BYTES]; /* the follow-up's span is a child of its parent's */
    cv_trace_span_id_of (parent_id, "request", parent_span);
    const char *values[] = {parent_id, follow_up_id, approval == REQUEST_APPROVAL_APPROVED ? "approved" : "rejected",
                            approver,  deadline,     parent_span};
    operation_t *operation = s_operation_new (self, SQL_DECIDE, fn, owner);
    snprintf (operation->id, sizeof operation->id, "%s", parent_id);
    return s_run (s_pipe_of (self, parent_id), operation, values, NULL, NULL, err);
}

int
orchestrator_store_approvals (orchestrator_store_t *self, size_t limit, orchestrator_store_fn *fn, void *owner,
                              cv_error_t *err)
{
    char text[24];
    snprintf (text, sizeof text, "%zu", limit);
    const char *values[] = {text};
    return s_run (self->pipes[0], s_operation_new (self, SQL_APPROVALS, fn, owner), values, NULL, NULL, err);
}

int
orchestrator_store_expired (orchestrator_store_t *self, int older_than_s, size_t limit, orchestrator_store_fn *fn,
                            void *owner, cv_error_t *err)
{
    char seconds[24], count[24];
    snprintf (seconds, sizeof seconds, "%d", older_than_s);
    snprintf (count, sizeof count, "%zu", limit);
    const char *values[] = {seconds, count};
    return s_run (self->pipes[0], s_operation_new (self, SQL_EXPIRED, fn, owner), values, NULL, NULL, err);
}

int
orchestrator_store_pending (orchestrator_store_t *self, orchestrator_store_fn *fn, void *owner, cv_error_t *err)
{
    return s_run (self->pipes[0], s_operation_new (self, SQL_PENDING, fn, owner), NULL, NULL, NULL, err);
}

int
orchestrator_store_ping (orchestrator_store_t *self, orchestrator_store_fn *fn, void *owner, cv_error_t *err)
{
    if (!orchestrator_store_available (self))
        return cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "postgresql unavailable: %s",
                             orchestrator_store_last_error (self));
    return s_run (self->pipes[0], s_operation_new (self, SQL_PING, fn, owner), NULL, NULL, NULL, err);
}

void
orchestrator_store_cork (orchestrator_store_t *self, bool corked)
{
    for (size_t i = 0; i < self->pipe_count; i++)
        cv_pgpipe_cork (self->pipes[i], corked);
}

bool
orchestrator_store_available (const orchestrator_store_t *self)
{
    for (size_t i = 0; i < self->pipe_count; i++)
        if (!cv_pgpipe_up (self->pipes[i]))
            return false;
    return true;
}

const char *
orchestrator_store_last_error (const orchestrator_store_t *self)
{
    for (size_t i = 0; i < self->pipe_count; i++)
        if (!cv_pgpipe_up (self->pipes[i]))
            return cv_pgpipe_last_error (self->pipes[i]);
    return "";
}

size_t
orchestrator_store_queued (const orchestrator_store_t *self)
{
    size_t queued = 0;
    for (size_t i = 0; i < self->pipe_count; i++)
        queued += cv_pgpipe_queued (self->pipes[i]);
    return queued;
}

void
orchestrator_store_counts (const orchestrator_store_t *self, uint64_t *commits, uint64_t *operations)
{
    *commits = *operations = 0;
    for (size_t i = 0; i < self->pipe_count; i++) {
        uint64_t pipe_commits, pipe_runs;
        cv_pgpipe_counts (self->pipes[i], &pipe_commits, &pipe_runs);
        *commits += pipe_commits;
        *operations += pipe_runs;
    }
}

/*  --------------------------------------------------------------------------
    Self-test: a request recorded, checkpointed stage by stage to done and loaded back; a failed
    one, an idempotency key used twice, the unfinished, a missing id, a ping, and an abort; against
    a database of the test's own, a copy of the pg fixture's migrated template. */

typedef struct {
    int answered;                   /* callbacks so far */
    int wanted;                     /* the loop stops when answered reaches it */
    cv_error_code_t code;           /* the last answer's error code, CV_ERR_OK... (0) when none */
    char field[64];                 /* ...and its field */
    char existing_id[64];           /* create's existing_id, "" when none */
    orchestrator_request_t *loaded; /* load's request, taken */
    char approval[16];              /* decide's */
    bool made;
    char listed[4096]; /* approvals', as JSON */
    char ids[8][64];   /* unfinished's ids */
    size_t id_count;
    uint64_t pending; /* pending's */
    double oldest_waiting_s;
    zsock_t *wake; /* tells the loop an answer came */
} s_test_t;

static void
s_test_answer (void *owner, orchestrator_store_answer_t *answer)
{
    s_test_t *test = owner;
    test->answered++;
    test->code = answer->err ? answer->err->code : 0;
    snprintf (test->field, sizeof test->field, "%s", answer->err ? answer->err->field : "");
    snprintf (test->existing_id, sizeof test->existing_id, "%s", answer->existing_id ? answer->existing_id : "");
    if (answer->request) {
        orchestrator_request_destroy (&test->loaded);
        test->loaded = answer->request;
        answer->request = NULL;
    }
    snprintf (test->approval, sizeof test->approval, "%s", answer->approval ? answer->approval : "");
    test->made = answer->made;
    test->pending = answer->pending;
    test->oldest_waiting_s = answer->oldest_waiting_s;
    test->listed[0] = '\0';
    if (answer->approvals) {
        char *text = json_dumps (answer->approvals, JSON_COMPACT);
        snprintf (test->listed, sizeof test->listed, "%s", text);
        free (text);
    }
    test->id_count = 0;
    for (size_t i = 0; answer->ids && answer->ids[i] && i < 8; i++)
        snprintf (test->ids[test->id_count++], sizeof test->ids[0], "%s", answer->ids[i]);
    zstr_send (test->wake, "answered");
}

static int
s_test_woken (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    s_test_t *test = arg;
    char *word = zstr_recv (reader);
    zstr_free (&word);
    return test->answered >= test->wanted ? -1 : 0;
}

static int
s_test_expired (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id, (void) arg;
    cv_assert_that (false, "the store did not answer within 10 seconds");
    return -1;
}

static int
s_test_until_available (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    return orchestrator_store_available (arg) ? -1 : 0;
}

/* Runs the loop until count more answers came. */
static void
s_test_wait (zloop_t *loop, s_test_t *test, int count)
{
    test->wanted = test->answered + count;
    int timer = zloop_timer (loop, 10000, 1, s_test_expired, NULL);
    zloop_start (loop);
    zloop_timer_end (loop, timer);
    cv_assert_that (test->answered == test->wanted, "%d answers of %d", test->answered, test->wanted);
}

/* The worker's reply for request's current stage (stage), accepted into it: the decision freezes
   a card, a-1 (waiting for approval when approval is set), and the executor answers that it did. */
static void
s_test_advance_with (orchestrator_request_t *request, int stage, bool approval)
{
    assert ((int) orchestrator_request_state (request) == stage);
    cv_arena_t *arena = cv_arena_new ();
    cv_envelope_t *sent = orchestrator_request_stage_envelope (request, arena);
    assert (sent);
    cv_envelope_t *reply = cv_envelope_reply_new (arena, sent);
    cv_error_t err;
    uint8_t *bank_answer = NULL;
    if (stage == REQUEST_INTENT) {
        Conveyor__V1__Intent *intent = cv_envelope_set_intent (reply, arena);
        intent->name = "lost_or_stolen_card";
        intent->confidence = 1.0f;
        intent->method = CONVEYOR__V1__INTENT__METHOD__RULE;
    } else if (stage == REQUEST_GATHER)
        cv_envelope_set_evidence (reply, arena);
    else if (stage == REQUEST_DECIDE) {
        Conveyor__V1__Decision *decision = cv_envelope_set_decision (reply, arena);
        decision->outcome = "freeze_card";
        decision->rule = "lost_card_freeze";
        Conveyor__V1__Action *action = cv_envelope_action_new (arena);
        action->id = "a-1";
        action->kind = "freeze_card";
        action->requires_approval = approval;
        decision->actions = cv_arena_alloc (arena, sizeof *decision->actions);
        decision->actions[0] = action;
        decision->n_actions = 1;
    } else if (stage == REQUEST_EXECUTE) {
        Conveyor__V1__ActionResults *performed = cv_envelope_set_action_results (reply, arena);
        Conveyor__V1__ActionResult *result = cv_envelope_action_result_new (arena);
        result->action_id = "a-1";
        result->kind = "freeze_card";
        result->outcome = CONVEYOR__V1__ACTION_RESULT__OUTCOME__DONE;
        result->attempts = 2;
        json_t *answer = json_pack ("{s:s}", "last4", "4417");
        bank_answer = cv_msgpack_pack (answer, &result->result.len, &err);
        json_decref (answer);
        result->result.data = bank_answer;
        performed->results = cv_arena_alloc (arena, sizeof *performed->results);
        performed->results[0] = result;
        performed->n_results = 1;
    } else
        cv_envelope_set_reply (reply, arena)->text = "Your card ending 4417 is frozen.";
    size_t size;
    uint8_t *packed = cv_envelope_pack (reply, &size);
    free (bank_answer);
    cv_envelope_t *unpacked = cv_envelope_unpack (packed, size, &err);
    assert (unpacked);
    cv_assert_that (orchestrator_request_accept (request, &unpacked, packed, size, 1000, 1, &err) == 0,
                    "stage %d refused: %s", stage, err.message);
    cv_envelope_destroy (&unpacked);
    free (packed);
    cv_arena_destroy (&arena);
}

static void
s_test_advance (orchestrator_request_t *request, int stage)
{
    s_test_advance_with (request, stage, false);
}

/* A request whose action waits for a person: recorded pending_approval, listed, decided once
   (approved: its follow-up recorded from its checkpoints, running at EXECUTE), and no longer
   listed or expired after. */
static void
s_test_approvals (orchestrator_store_t *store, zloop_t *loop, s_test_t *test)
{
    cv_error_t err;
    uint64_t far = 4102444800000ULL;
    orchestrator_request_t *request = orchestrator_request_new (NULL, NULL, "cust-3", NULL, "Refund it", NULL, far);
    json_t *context = json_pack ("[{s:s, s:s}]", "role", "user", "content", "I was charged twice.");
    orchestrator_request_set_context (request, context);
    assert (orchestrator_store_create (store, request, s_test_answer, test, &err) == 0);
    s_test_wait (loop, test, 1);
    for (int stage = 0; !orchestrator_request_finished (request); stage++) {
        s_test_advance_with (request, (int) orchestrator_request_state (request), true);
        if (orchestrator_request_state (request) == REQUEST_RESPOND) { /* the held execute result */
            assert (orchestrator_store_checkpoint (store, request, REQUEST_DECIDE, s_test_answer, test, &err) == 0);
            assert (orchestrator_store_checkpoint (store, request, REQUEST_EXECUTE, s_test_answer, test, &err) == 0);
            s_test_wait (loop, test, 2);
        } else if (orchestrator_request_state (request) != REQUEST_EXECUTE) {
            int done = orchestrator_request_finished (request) ? REQUEST_RESPOND : stage;
            assert (orchestrator_store_checkpoint (store, request, done, s_test_answer, test, &err) == 0);
            s_test_wait (loop, test, 1);
        }
        assert (stage < REQUEST_STAGES);
    }
    cv_assert_that (test->code == 0, "checkpoints: code %d", test->code);
    assert (orchestrator_request_awaiting_approval (request));
    const char *id = orchestrator_request_id (request);

    /* listed; read back, it is still waiting */
    assert (orchestrator_store_approvals (store, 100, s_test_answer, test, &err) == 0);
    s_test_wait (loop, test, 1);
    cv_assert_that (strstr (test->listed, id) && strstr (test->listed, "freeze_card"), "approvals: %s", test->listed);
    assert (orchestrator_store_load (store, id, s_test_answer, test, &err) == 0);
    s_test_wait (loop, test, 1);
    assert (test->loaded && streq (orchestrator_request_status (test->loaded), "pending_approval"));
    orchestrator_request_destroy (&test->loaded);
    /* counted among those waiting (other tests' requests may wait in the same database too) */
    assert (orchestrator_store_pending (store, s_test_answer, test, &err) == 0);
    s_test_wait (loop, test, 1);
    cv_assert_that (test->code == 0 && test->pending >= 1 && test->oldest_waiting_s >= 0, "pending: %" PRIu64 " %g",
                    test->pending, test->oldest_waiting_s);

    /* approved: the follow-up is made once */
    char follow_up[64];
    snprintf (follow_up, sizeof follow_up, "%s-f", id);
    assert (orchestrator_store_decide (store, id, follow_up, REQUEST_APPROVAL_APPROVED, "alice", far, s_test_answer,
                                       test, &err)
            == 0);
    s_test_wait (loop, test, 1);
    cv_assert_that (test->code == 0 && streq (test->existing_id, follow_up) && test->made, "decide: %d %s %d",
                    test->code, test->existing_id, test->made);
    assert (orchestrator_store_decide (store, id, "r-other", REQUEST_APPROVAL_REJECTED, "bob", far, s_test_answer, test,
                                       &err)
            == 0);
    s_test_wait (loop, test, 1);
    assert (test->code == 0 && streq (test->existing_id, follow_up) && !test->made
            && streq (test->approval, "approved"));
    /* the follow-up runs from the parent's decision, approved: its execute stage is next */
    assert (orchestrator_store_load (store, follow_up, s_test_answer, test, &err) == 0);
    s_test_wait (loop, test, 1);
    cv_assert_that (test->loaded && orchestrator_request_state (test->loaded) == REQUEST_EXECUTE, "follow-up: %d",
                    test->loaded ? (int) orchestrator_request_state (test->loaded) : -1);
    assert (streq (orchestrator_request_parent_id (test->loaded), id));
    assert (streq (orchestrator_request_approver (test->loaded), "alice"));
    assert (json_equal ((json_t *) orchestrator_request_context (test->loaded), context)); /* the parent's */
    json_decref (context);
    orchestrator_request_destroy (&test->loaded);
    /* the parent is done, pointing at it; nothing waits or expires any more */
    assert (orchestrator_store_load (store, id, s_test_answer, test, &err) == 0);
    s_test_wait (loop, test, 1);
    assert (test->loaded && streq (orchestrator_request_status (test->loaded), "done"));
    orchestrator_request_destroy (&test->loaded);
    assert (orchestrator_store_expired (store, 0, 100, s_test_answer, test, &err) == 0);
    s_test_wait (loop, test, 1);
    for (size_t i = 0; i < test->id_count; i++)
        assert (!streq (test->ids[i], id));
    /* deciding on a request that is not there: INVALID on field id; on one that does not wait
       (any more, or ever): on field status */
    assert (orchestrator_store_decide (store, "r-no-such", "r-x", REQUEST_APPROVAL_APPROVED, "alice", far,
                                       s_test_answer, test, &err)
            == 0);
    s_test_wait (loop, test, 1);
    assert (test->code == CV_ERR_INVALID && streq (test->field, "id"));
    assert (orchestrator_store_decide (store, follow_up, "r-y", REQUEST_APPROVAL_APPROVED, "alice", far, s_test_answer,
                                       test, &err)
            == 0);
    s_test_wait (loop, test, 1);
    assert (test->code == CV_ERR_INVALID && streq (test->field, "status"));
    orchestrator_request_destroy (&request);
}

void
orchestrator_store_test (bool verbose)
{
    char *url = cv_pg_fixture_url ();
    cv_assert_that (url, "this test needs the pg fixture (CONVEYOR_TEST_PG_URL_FILE)");
    /* a database of this process's own, so that its writes meet no other test's */
    char name[64], drop[128], create[160];
    snprintf (name, sizeof name, "orchestrator_store_test_%d", (int) getpid ());
    snprintf (drop, sizeof drop, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    snprintf (create, sizeof create, "CREATE DATABASE %s TEMPLATE conveyor_template", name);
    cv_error_t err;
    cv_pg_t *admin = cv_pg_new (url, "orchestrator_store_test", &err);
    cv_assert_that (admin, "connect: %s", err.message);
    cv_assert_that (!cv_pg_run (admin, drop, 0, NULL, &err), "%s: %s", drop, err.message);
    cv_assert_that (!cv_pg_run (admin, create, 0, NULL, &err), "%s: %s", create, err.message);
    const char *slash = strrchr (url, '/');
    assert (slash);
    char database_url[512];
    snprintf (database_url, sizeof database_url, "%.*s/%s", (int) (slash - url), url, name);

    /* the template is migrated already: migrating again is a no-op */
    cv_assert_that (!orchestrator_store_migrate (database_url, "orchestrator_store_test", &err), "migrate: %s",
                    err.message);

    zloop_t *loop = zloop_new ();
    s_test_t test = {0};
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "inproc://orchestrator-store-test-%d", (int) getpid ());
    zsock_t *woken = zsock_new (ZMQ_PAIR);
    test.wake = zsock_new (ZMQ_PAIR);
    assert (woken && test.wake);
    assert (zsock_bind (woken, "%s", endpoint) == 0);
    assert (zsock_connect (test.wake, "%s", endpoint) == 0);
    zloop_reader (loop, woken, s_test_woken, &test);
    cv_log_t *log = cv_log_new ("orchestrator", "store-test", verbose);
    orchestrator_store_config_t config = {
        .url = database_url, .application_name = "orchestrator_store_test", .connections = 2, .log = log};
    orchestrator_store_t *store = orchestrator_store_new (loop, &config);
    assert (store);
    int timer = zloop_timer (loop, 10, 0, s_test_until_available, store);
    int deadline = zloop_timer (loop, 10000, 1, s_test_expired, NULL);
    zloop_start (loop);
    zloop_timer_end (loop, timer);
    zloop_timer_end (loop, deadline);
    cv_assert_that (orchestrator_store_available (store), "not available: %s", orchestrator_store_last_error (store));
    assert (streq (orchestrator_store_last_error (store), ""));

    /* a ping */
    assert (orchestrator_store_ping (store, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    assert (test.code == 0);

    /* a request recorded, then each stage's checkpoint, the last marking it done */
    uint64_t far = 4102444800000ULL; /* 2100 */
    char key[64];
    snprintf (key, sizeof key, "key-%d", (int) getpid ());
    orchestrator_request_t *request =
        orchestrator_request_new (NULL, NULL, "cust-1", "s-1", "Where is my card?", key, far);
    json_t *context = json_pack ("[{s:s, s:s}, {s:s, s:s}]", "role", "user", "content", "I ordered a card \u2764",
                                 "role", "assistant", "content", "It is on its way.");
    orchestrator_request_set_context (request, context);
    assert (orchestrator_store_create (store, request, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    cv_assert_that (test.code == 0 && !*test.existing_id, "create: code %d, existing %s", test.code, test.existing_id);

    /* a second request with the same user and idempotency key names the first */
    orchestrator_request_t *again =
        orchestrator_request_new (NULL, NULL, "cust-1", "s-1", "Where is my card?", key, far);
    assert (orchestrator_store_create (store, again, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    cv_assert_that (streq (test.existing_id, orchestrator_request_id (request)), "existing %s, first %s",
                    test.existing_id, orchestrator_request_id (request));
    orchestrator_request_destroy (&again);

    /* a second request, failed; both are unfinished until then */
    orchestrator_request_t *failing = orchestrator_request_new (NULL, NULL, "cust-2", NULL, "hello", NULL, far);
    orchestrator_request_set_context (failing, context); /* without a key too */
    assert (orchestrator_store_create (store, failing, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    assert (orchestrator_store_unfinished (store, 1000, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    bool seen_first = false, seen_failing = false;
    for (size_t i = 0; i < test.id_count; i++) {
        seen_first |= streq (test.ids[i], orchestrator_request_id (request));
        seen_failing |= streq (test.ids[i], orchestrator_request_id (failing));
    }
    assert (seen_first && seen_failing);
    orchestrator_request_fail (failing, "the test failed it");
    assert (orchestrator_store_fail (store, failing, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    assert (test.code == 0);
    assert (orchestrator_store_load (store, orchestrator_request_id (failing), s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    assert (test.loaded && orchestrator_request_state (test.loaded) == REQUEST_FAILED);
    assert (streq (orchestrator_request_error (test.loaded), "the test failed it"));
    assert (json_equal ((json_t *) orchestrator_request_context (test.loaded), context));
    orchestrator_request_destroy (&test.loaded);
    /* a context some other hand stored without a role: refused on load, not sent on */
    {
        char update[256];
        snprintf (update, sizeof update, "UPDATE requests SET context = '[{\"content\": \"hi\"}]' WHERE id = '%s'",
                  orchestrator_request_id (failing));
        cv_pg_t *writer = cv_pg_new (database_url, "orchestrator_store_test", &err);
        assert (writer);
        cv_pg_result_t *updated = cv_pg_exec (writer, update, 0, NULL, &err);
        cv_assert_that (updated, "%s", err.message);
        cv_pg_result_destroy (&updated);
        cv_pg_destroy (&writer);
        assert (orchestrator_store_load (store, orchestrator_request_id (failing), s_test_answer, &test, &err) == 0);
        s_test_wait (loop, &test, 1);
        cv_assert_that (!test.loaded && test.code == CV_ERR_INTERNAL, "a bad context loaded (code %d)", test.code);
    }

    /* corked, the five checkpoints go together; one written twice is left as it was */
    /* queued also counts the statements a connection still being set up is preparing */
    size_t queued_before = orchestrator_store_queued (store);
    orchestrator_store_cork (store, true);
    for (int stage = 0; stage < REQUEST_STAGES; stage++) {
        s_test_advance (request, stage);
        assert (orchestrator_store_checkpoint (store, request, stage, s_test_answer, &test, &err) == 0);
    }
    assert (orchestrator_store_queued (store) == queued_before + REQUEST_STAGES);
    uint64_t commits, operations;
    orchestrator_store_counts (store, &commits, &operations);
    orchestrator_store_cork (store, false);
    s_test_wait (loop, &test, REQUEST_STAGES);
    assert (test.code == 0 && orchestrator_store_queued (store) <= queued_before);
    uint64_t commits_after, operations_after;
    orchestrator_store_counts (store, &commits_after, &operations_after);
    assert (operations_after == operations + REQUEST_STAGES && commits_after > commits);
    assert (orchestrator_store_checkpoint (store, request, 0, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    assert (test.code == 0);

    /* the decision's action was recorded with the decide checkpoint, and marked done with the
       execute one, with the bank's answer */
    char query[256];
    snprintf (query, sizeof query,
              "SELECT status, result->>'last4', coalesce(reason, ''), replayed::text, attempts::text,"
              " (performed_at IS NOT NULL)::text FROM actions WHERE request_id = '%s' AND action_id = 'a-1'",
              orchestrator_request_id (request));
    cv_pg_t *reader = cv_pg_new (database_url, "orchestrator_store_test", &err);
    cv_assert_that (reader, "connect: %s", err.message);
    cv_pg_result_t *row = cv_pg_exec (reader, query, 0, NULL, &err);
    cv_assert_that (row && cv_pg_result_rows (row) == 1, "the action's row: %s", row ? "missing" : err.message);
    cv_assert_that (streq (cv_pg_result_text (row, 0, 0), "done") && streq (cv_pg_result_text (row, 0, 1), "4417")
                        && streq (cv_pg_result_text (row, 0, 2), "") && streq (cv_pg_result_text (row, 0, 3), "false")
                        && streq (cv_pg_result_text (row, 0, 4), "2") && streq (cv_pg_result_text (row, 0, 5), "true"),
                    "the action's row: %s %s '%s' %s %s %s", cv_pg_result_text (row, 0, 0),
                    cv_pg_result_text (row, 0, 1), cv_pg_result_text (row, 0, 2), cv_pg_result_text (row, 0, 3),
                    cv_pg_result_text (row, 0, 4), cv_pg_result_text (row, 0, 5));
    cv_pg_result_destroy (&row);
    cv_pg_destroy (&reader);

    /* loaded back: done, with its results and checkpoints */
    assert (orchestrator_store_load (store, orchestrator_request_id (request), s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    cv_assert_that (test.loaded, "load: code %d", test.code);
    assert (orchestrator_request_state (test.loaded) == REQUEST_DONE);
    assert (streq (orchestrator_request_text (test.loaded), "Where is my card?"));
    assert (streq (orchestrator_request_user_id (test.loaded), "cust-1"));
    assert (json_equal ((json_t *) orchestrator_request_context (test.loaded), context));
    json_decref (context);
    for (int stage = 0; stage < REQUEST_STAGES; stage++) {
        size_t size, loaded_size;
        const uint8_t *bytes = orchestrator_request_result_bytes (request, stage, &size);
        const uint8_t *loaded = orchestrator_request_result_bytes (test.loaded, stage, &loaded_size);
        assert (bytes && loaded && size == loaded_size && memcmp (bytes, loaded, size) == 0);
    }
    orchestrator_request_destroy (&test.loaded);

    s_test_approvals (store, loop, &test);

    /* no longer unfinished; a missing id is INVALID on field id */
    assert (orchestrator_store_unfinished (store, 1000, s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    for (size_t i = 0; i < test.id_count; i++)
        assert (!streq (test.ids[i], orchestrator_request_id (request)));
    assert (orchestrator_store_load (store, "r-no-such-request", s_test_answer, &test, &err) == 0);
    s_test_wait (loop, &test, 1);
    cv_assert_that (test.code == CV_ERR_INVALID && streq (test.field, "id"), "missing id: code %d field %s", test.code,
                    test.field);
    assert (!test.loaded);

    /* an abort fails what is queued at once with UNAVAILABLE, and refuses what comes after */
    orchestrator_store_cork (store, true);
    assert (orchestrator_store_ping (store, s_test_answer, &test, &err) == 0);
    int answered = test.answered;
    orchestrator_store_abort (store, "stopping");
    assert (test.answered == answered + 1 && test.code == CV_ERR_UNAVAILABLE);
    assert (orchestrator_store_queued (store) == 0);
    assert (orchestrator_store_ping (store, s_test_answer, &test, &err) == -1);
    assert (err.code == CV_ERR_UNAVAILABLE);

    orchestrator_store_destroy (&store);
    orchestrator_request_destroy (&request);
    orchestrator_request_destroy (&failing);
    cv_log_destroy (&log);
    zsock_destroy (&woken);
    zsock_destroy (&test.wake);
    zloop_destroy (&loop);
    cv_assert_that (!cv_pg_run (admin, drop, 0, NULL, &err), "%s: %s", drop, err.message);
    cv_pg_destroy (&admin);
    free (url);
    if (verbose)
        printf ("orchestrator_store: ok\n");
}
