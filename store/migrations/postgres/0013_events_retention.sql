-- The events log is pruned after a retention period; this remembers how far, so that a console
-- resuming from a cursor below it knows it may have missed events and starts afresh.
CREATE TABLE events_pruned (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    through_seq BIGINT NOT NULL
);
