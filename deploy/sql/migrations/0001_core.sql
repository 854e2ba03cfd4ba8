-- 0001_core: the pipeline's own tables (schema public).
--
-- A request row is the unit of work; after every stage the orchestrator appends a checkpoint
-- holding the stage result, so a request survives the crash of any process; actions are
-- recorded before they are performed, so a retry after a crash finds them and does not act twice.
--
-- Applied by `conveyor migrate`, which wraps this file in its own transaction and records it
-- in schema_migrations: no BEGIN/COMMIT here.

create table requests (
    id              text primary key,
    client          text,                    -- who sent it (API key name, channel)
    user_id         text not null,           -- the end customer the request is about
    session_id      text,
    text            text not null,
    status          text not null check (status in ('running', 'done', 'failed')),
    stage           text,                    -- last stage reached, for status and trace
    idempotency_key text,
    error           text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    finished_at     timestamptz,
    deadline_ms     bigint not null,         -- the request's time budget
    trace_id        text not null
);

-- A retried submission with the same key returns the first request instead of a new one.
create unique index requests_idempotency_key
    on requests (user_id, idempotency_key)
    where idempotency_key is not null;

-- Recovery after a crash scans the unfinished requests only; they are few.
create index requests_running on requests (status) where status = 'running';

-- Retention removes old requests (and their checkpoints and actions by cascade).
create index requests_created_at on requests (created_at);

create table checkpoints (
    request_id text not null references requests (id) on delete cascade,
    seq        int not null check (seq >= 0),   -- order of the checkpoints of one request
    stage      text not null check (stage in ('intent', 'gather', 'decide', 'respond')),
    body       bytea not null,                  -- the packed protobuf Envelope after this stage
    elapsed_us bigint not null,                 -- time the stage took, for the trace waterfall
    created_at timestamptz not null default now(),
    primary key (request_id, seq)
);

-- Retention deletes checkpoints by age.
create index checkpoints_created_at on checkpoints (created_at);

create table actions (
    request_id text not null references requests (id) on delete cascade,
    action_id  text not null,                   -- stable within the request, so a retry finds it
    kind       text not null,
    params     jsonb not null default '{}',
    status     text not null default 'recorded' check (status in (
                   'recorded', 'pending_approval', 'approved', 'rejected', 'done', 'failed')),
    approver   text,
    result     jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (request_id, action_id)
);

-- The approvals queue lists the actions waiting for a human.
create index actions_pending_approval on actions (created_at) where status = 'pending_approval';
