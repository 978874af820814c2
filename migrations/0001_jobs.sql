-- Schema version 1: the jobs table, the queue's one source of truth.
-- Applied by `Queue::migrate`, in one transaction, under an advisory lock.

CREATE SCHEMA IF NOT EXISTS workerpool;

CREATE TABLE workerpool.schema_version (
    version integer NOT NULL
);
INSERT INTO workerpool.schema_version (version) VALUES (0);

CREATE TABLE workerpool.jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The task type's stable name (`Durable::KIND`): a worker claims its own kind only.
    kind             text        NOT NULL,
    payload          jsonb       NOT NULL,
    -- ready: waits for run_at; running: claimed under a lease; done; dead.
    state            text        NOT NULL DEFAULT 'ready'
                     CHECK (state IN ('ready', 'running', 'done', 'dead')),
    -- Higher runs first.
    priority         smallint    NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL DEFAULT now(),
    -- Counted at claim, so that a job that kills its process still ends dead.
    attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer     NOT NULL CHECK (max_attempts >= 1),
    -- The idempotency key: one pending (ready or running) job per kind and key.
    key              text,
    lease_owner      text,
    lease_token      bigint,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);

-- What a claim reads: ready jobs of one kind, by priority, then due time.
CREATE INDEX jobs_ready ON workerpool.jobs (kind, priority DESC, run_at, id)
    WHERE state = 'ready';
-- When the next ready job of a kind is due, for a worker with nothing to do.
CREATE INDEX jobs_due ON workerpool.jobs (kind, run_at)
    WHERE state = 'ready';
-- What reclaiming reads: leases by expiry.
CREATE INDEX jobs_leases ON workerpool.jobs (lease_expires_at)
    WHERE state = 'running';
-- What pruning and the dead-letter listing read.
CREATE INDEX jobs_finished ON workerpool.jobs (state, finished_at)
    WHERE state IN ('done', 'dead');
-- Idempotency: a second pending job with the same kind and key cannot exist.
CREATE UNIQUE INDEX jobs_pending_key ON workerpool.jobs (kind, key)
    WHERE key IS NOT NULL AND state IN ('ready', 'running');

-- New ready jobs wake idle workers at once, whoever inserts them (in their
-- own transaction: the notification goes out when it commits).
CREATE FUNCTION workerpool.notify_ready() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workerpool_jobs', NEW.kind);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_ready
    AFTER INSERT OR UPDATE OF state, run_at ON workerpool.jobs
    FOR EACH ROW
    WHEN (NEW.state = 'ready' AND NEW.run_at <= now())
    EXECUTE FUNCTION workerpool.notify_ready();
