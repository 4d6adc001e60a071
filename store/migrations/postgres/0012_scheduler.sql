-- The scheduler: recurring tasks (cron in a time zone), catch-up policies, cancelled and
-- skipped tasks; triggered-task rules; internal notifications to employees.

ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check
    CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled', 'skipped'));
-- the occurrence's own time (NULL: due_at's first value); due_at moves on retries and
-- reschedules, this does not
ALTER TABLE tasks ADD COLUMN occurrence_at BIGINT;
UPDATE tasks SET occurrence_at = due_at;
-- a recurring task: cron expression and IANA zone; the first occurrence's id keys the rest
ALTER TABLE tasks ADD COLUMN recurrence TEXT;
ALTER TABLE tasks ADD COLUMN time_zone TEXT;
ALTER TABLE tasks ADD COLUMN series_id uuid;
-- fire_all_missed | fire_once | skip_if_older_than:SECONDS
ALTER TABLE tasks ADD COLUMN catch_up TEXT NOT NULL DEFAULT 'fire_all_missed';
ALTER TABLE tasks ADD COLUMN finished_at BIGINT;
DROP INDEX tasks_client;
CREATE INDEX tasks_client_due ON tasks (client_id, due_at);

-- "When a post or comment with #X appears / by author Y" → an action.
CREATE TABLE triggers (
    id          uuid PRIMARY KEY NOT NULL,
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- the client's social profile, NULL for any of them
    profile_id  uuid,
    condition   jsonb NOT NULL,
    action      jsonb NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX triggers_client ON triggers (client_id);

-- What the console tells one employee; the id is the task's that made it, so one task
-- notifies once however often it runs.
CREATE TABLE notifications (
    id          uuid PRIMARY KEY NOT NULL,
    client_id   uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    payload     jsonb NOT NULL,
    created_at  BIGINT NOT NULL,
    read_at     BIGINT
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);
