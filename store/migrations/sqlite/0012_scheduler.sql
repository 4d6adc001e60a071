-- The scheduler: recurring tasks (cron in a time zone), catch-up policies, cancelled and
-- skipped tasks; triggered-task rules; internal notifications to employees.

-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.
CREATE TABLE tasks_next (
    id              BLOB PRIMARY KEY NOT NULL,
    -- NULL for platform-level tasks
    client_id       BLOB REFERENCES clients (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    due_at          INTEGER NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT NOT NULL UNIQUE,
    locked_by       TEXT,
    locked_until    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    -- the occurrence's own time (NULL: due_at's first value); due_at moves on retries and
    -- reschedules, this does not
    occurrence_at   INTEGER,
    -- a recurring task: cron expression and IANA zone; the first occurrence's id keys the rest
    recurrence      TEXT,
    time_zone       TEXT,
    series_id       BLOB,
    -- fire_all_missed | fire_once | skip_if_older_than:SECONDS
    catch_up        TEXT NOT NULL DEFAULT 'fire_all_missed',
    finished_at     INTEGER
);
INSERT INTO tasks_next (id, client_id, kind, payload, due_at, status, attempts, idempotency_key,
    locked_by, locked_until, last_error, created_at, occurrence_at)
SELECT id, client_id, kind, payload, due_at, status, attempts, idempotency_key, locked_by,
    locked_until, last_error, created_at, due_at FROM tasks;
DROP TABLE tasks;
ALTER TABLE tasks_next RENAME TO tasks;
CREATE INDEX tasks_status_due ON tasks (status, due_at);
CREATE INDEX tasks_status_lease ON tasks (status, locked_until);
CREATE INDEX tasks_client_due ON tasks (client_id, due_at);

-- "When a post or comment with #X appears / by author Y" → an action.
CREATE TABLE triggers (
    id          BLOB PRIMARY KEY NOT NULL,
    client_id   BLOB NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- the client's social profile, NULL for any of them
    profile_id  BLOB,
    condition   TEXT NOT NULL,
    action      TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);
CREATE INDEX triggers_client ON triggers (client_id);

-- What the console tells one employee; the id is the task's that made it, so one task
-- notifies once however often it runs.
CREATE TABLE notifications (
    id          BLOB PRIMARY KEY NOT NULL,
    client_id   BLOB NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    read_at     INTEGER
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);
