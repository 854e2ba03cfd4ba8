/* The orchestrator's PostgreSQL store: requests, checkpoints, actions, recovery look-ups. */
#include "orchestrator_store.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_migrations.h"
#include "cv_msgpack.h"
#include "cv_pg.h"

struct _orchestrator_store_t {
    char *url;
    char *application_name;
    cv_pg_t *pg;
};

orchestrator_store_t *
orchestrator_store_new (const char *url, const char *application_name)
{
    assert (url && application_name);
    orchestrator_store_t *self = calloc (1, sizeof *self);
    self->url = strdup (url);
    self->application_name = strdup (application_name);
    return self;
}

void
orchestrator_store_destroy (orchestrator_store_t **self_p)
{
    assert (self_p);
    orchestrator_store_t *self = *self_p;
    if (!self)
        return;
    cv_pg_destroy (&self->pg);
    free (self->url);
    free (self->application_name);
    free (self);
    *self_p = NULL;
}

static cv_pg_t *
s_pg (orchestrator_store_t *self, cv_error_t *err)
{
    if (!self->pg)
        self->pg = cv_pg_new (self->url, self->application_name, err);
    return self->pg;
}

static PGresult *
s_exec (orchestrator_store_t *self, const char *sql, int count, const char *const *params, cv_error_t *err)
{
    cv_pg_t *pg = s_pg (self, err);
    return pg ? cv_pg_exec (pg, sql, count, params, err) : NULL;
}

int
orchestrator_store_migrate (orchestrator_store_t *self, cv_error_t *err)
{
    cv_pg_t *pg = s_pg (self, err);
    int applied;
    return pg ? cv_migrations_apply (pg, &applied, err) : -1;
}

int
orchestrator_store_ping (orchestrator_store_t *self, cv_error_t *err)
{
    PGresult *result = s_exec (self, "SELECT 1", 0, NULL, err);
    PQclear (result);
    return result ? 0 : -1;
}

int
orchestrator_store_create (orchestrator_store_t *self, const orchestrator_request_t *request, char *existing_id,
                           size_t existing_size, cv_error_t *err)
{
    char deadline[24];
    snprintf (deadline, sizeof deadline, "%llu", (unsigned long long) orchestrator_request_deadline (request));
    const char *params[] = {orchestrator_request_id (request),         orchestrator_request_user_id (request),
                            orchestrator_request_session_id (request), orchestrator_request_text (request),
                            orchestrator_request_idempotency_key (request), deadline,
                            orchestrator_request_trace_id (request)};
    PGresult *result = s_exec (self,
                               "INSERT INTO requests (id, user_id, session_id, text, status, stage,"
                               " idempotency_key, deadline_ms, trace_id)"
                               " VALUES ($1, $2, NULLIF($3, ''), $4, 'running', 'intent', NULLIF($5, ''), $6, $7)"
                               " ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
                               " DO NOTHING RETURNING id",
                               7, params, err);
    if (!result)
        return -1;
    int inserted = PQntuples (result);
    PQclear (result);
    if (inserted)
        return 0;
    const char *lookup[] = {orchestrator_request_user_id (request), orchestrator_request_idempotency_key (request)};
    result = s_exec (self, "SELECT id FROM requests WHERE user_id = $1 AND idempotency_key = $2", 2, lookup, err);
    if (!result)
        return -1;
    int rc = 1;
    if (PQntuples (result) == 1)
        snprintf (existing_id, existing_size, "%s", PQgetvalue (result, 0, 0));
    else /* deleted between the two statements, by retention */
        rc = cv_error_set (err, CV_ERR_UNAVAILABLE, NULL, "idempotency key conflict; retry");
    PQclear (result);
    return rc;
}

/* bytea in text form: \x followed by hex digits. */
static char *
s_hex (const uint8_t *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    char *text = malloc (2 * size + 3);
    text[0] = '\\';
    text[1] = 'x';
    for (size_t i = 0; i < size; i++) {
        text[2 + 2 * i] = digits[data[i] >> 4];
        text[3 + 2 * i] = digits[data[i] & 0x0f];
    }
    text[2 + 2 * size] = '\0';
    return text;
}

/* The decision's actions as a JSON array for the actions table. */
static char *
s_actions_json (const Conveyor__V1__Decision *decision)
{
    json_t *actions = json_array ();
    for (size_t i = 0; decision && i < decision->n_actions; i++) {
        const Conveyor__V1__Action *action = decision->actions[i];
        cv_error_t err;
        json_t *params = cv_msgpack_unpack (action->params.data, action->params.len, "params", &err);
        json_array_append_new (actions, json_pack ("{s:s, s:s, s:o}", "id", action->id, "kind", action->kind,
                                                   "params", params ? params : json_object ()));
    }
    char *text = json_dumps (actions, JSON_COMPACT);
    json_decref (actions);
    return text;
}

int
orchestrator_store_checkpoint (orchestrator_store_t *self, const orchestrator_request_t *request, int stage,
                               cv_error_t *err)
{
    const cv_envelope_t *result = orchestrator_request_result (request, stage);
    assert (result);
    size_t size;
    uint8_t *packed = cv_envelope_pack (result, &size);
    char *body = s_hex (packed, size);
    free (packed);
    char seq[8], elapsed[24];
    snprintf (seq, sizeof seq, "%d", stage + 1);
    snprintf (elapsed, sizeof elapsed, "%lld", (long long) orchestrator_request_stage_us (request, stage));
    orchestrator_state_t next = orchestrator_request_state (request);
    const char *next_stage = orchestrator_request_stage_name (next);
    char *actions = s_actions_json (stage == REQUEST_DECIDE ? result->decision : NULL);
    const char *params[] = {orchestrator_request_id (request),
                            seq,
                            orchestrator_request_stage_name ((orchestrator_state_t) stage),
                            body,
                            elapsed,
                            actions,
                            next_stage ? next_stage : orchestrator_request_stage_name (REQUEST_RESPOND),
                            orchestrator_request_status (request)};
    /* One statement, one transaction: the checkpoint, the actions and the request's progress. */
    PGresult *written = s_exec (self,
                                "WITH checkpoint AS ("
                                "  INSERT INTO checkpoints (request_id, seq, stage, body, elapsed_us)"
                                "  VALUES ($1, $2, $3, $4::bytea, $5) ON CONFLICT DO NOTHING RETURNING 1),"
                                " recorded AS ("
                                "  INSERT INTO actions (request_id, action_id, kind, params)"
                                "  SELECT $1, a->>'id', a->>'kind', a->'params' FROM jsonb_array_elements($6::jsonb) a"
                                "  ON CONFLICT DO NOTHING RETURNING 1)"
                                " UPDATE requests SET stage = $7, status = $8, updated_at = now(),"
                                "  finished_at = CASE WHEN $8 = 'running' THEN NULL ELSE now() END"
                                " WHERE id = $1",
                                8, params, err);
    free (body);
    free (actions);
    PQclear (written);
    return written ? 0 : -1;
}

int
orchestrator_store_fail (orchestrator_store_t *self, const orchestrator_request_t *request, cv_error_t *err)
{
    const char *error = orchestrator_request_error (request);
    const char *params[] = {orchestrator_request_id (request), error ? error : "failed"};
    PGresult *result = s_exec (self,
                               "UPDATE requests SET status = 'failed', error = $2, finished_at = now(),"
                               " updated_at = now() WHERE id = $1",
                               2, params, err);
    PQclear (result);
    return result ? 0 : -1;
}

static int
s_replay_checkpoints (orchestrator_request_t *request, PGresult *rows, cv_error_t *err)
{
    for (int row = 0; row < PQntuples (rows); row++) {
        int seq = atoi (PQgetvalue (rows, row, 0));
        if (seq != (int) orchestrator_request_state (request) + 1)
            return cv_error_set (err, CV_ERR_INTERNAL, "seq", "request %s: checkpoint %d out of order",
                                 orchestrator_request_id (request), seq);
        size_t size;
        unsigned char *body = PQunescapeBytea ((const unsigned char *) PQgetvalue (rows, row, 1), &size);
        cv_envelope_t *result = body ? cv_envelope_unpack (body, size, err) : NULL;
        PQfreemem (body);
        if (!result || orchestrator_request_accept (request, &result, atoll (PQgetvalue (rows, row, 2)), err)) {
            cv_error_prefix (err, "request %s checkpoint %d", orchestrator_request_id (request), seq);
            return -1;
        }
        orchestrator_request_note_checkpoint (request, seq - 1, PQgetvalue (rows, row, 3));
    }
    return 0;
}

orchestrator_request_t *
orchestrator_store_load (orchestrator_store_t *self, const char *id, cv_error_t *err)
{
    const char *params[] = {id};
    PGresult *row = s_exec (self,
                            "SELECT id, trace_id, user_id, coalesce(session_id, ''), text,"
                            " coalesce(idempotency_key, ''), deadline_ms, status, coalesce(error, ''),"
                            " extract(epoch FROM finished_at - created_at) * 1000"
                            " FROM requests WHERE id = $1",
                            1, params, err);
    if (!row)
        return NULL;
    if (PQntuples (row) != 1) {
        PQclear (row);
        cv_error_set (err, CV_ERR_INVALID, "id", "no request %s", id);
        return NULL;
    }
    orchestrator_request_t *request = orchestrator_request_new (
        PQgetvalue (row, 0, 0), PQgetvalue (row, 0, 1), PQgetvalue (row, 0, 2), PQgetvalue (row, 0, 3),
        PQgetvalue (row, 0, 4), PQgetvalue (row, 0, 5), strtoull (PQgetvalue (row, 0, 6), NULL, 10));
    bool failed = strcmp (PQgetvalue (row, 0, 7), "failed") == 0;
    char *error = strdup (PQgetvalue (row, 0, 8));
    if (!PQgetisnull (row, 0, 9))
        orchestrator_request_set_total_ms (request, strtod (PQgetvalue (row, 0, 9), NULL));
    PQclear (row);

    PGresult *rows = s_exec (self,
                             "SELECT seq, body, elapsed_us,"
                             " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                             " FROM checkpoints WHERE request_id = $1 ORDER BY seq",
                             1, params, err);
    int rc = rows ? s_replay_checkpoints (request, rows, err) : -1;
    PQclear (rows);
    if (rc == 0 && failed)
        orchestrator_request_fail (request, error);
    free (error);
    if (rc)
        orchestrator_request_destroy (&request);
    return request;
}

char **
orchestrator_store_unfinished (orchestrator_store_t *self, cv_error_t *err)
{
    PGresult *rows = s_exec (self, "SELECT id FROM requests WHERE status = 'running' ORDER BY created_at", 0, NULL, err);
    if (!rows)
        return NULL;
    int count = PQntuples (rows);
    char **ids = calloc ((size_t) count + 1, sizeof (char *));
    for (int i = 0; i < count; i++)
        ids[i] = strdup (PQgetvalue (rows, i, 0));
    PQclear (rows);
    return ids;
}
