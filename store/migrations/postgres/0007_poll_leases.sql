-- Which node polls a channel read by polling, and until when. A node polls only channels whose
-- lease it holds and renews it while it polls; a lease whose node died runs out and another
-- node claims it. No consensus of our own: the database's row decides.
CREATE TABLE poll_leases (
    channel_id  uuid PRIMARY KEY NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    holder      TEXT NOT NULL,
    held_until  BIGINT NOT NULL
);
