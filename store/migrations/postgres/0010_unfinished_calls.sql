-- Calls still without an outcome, oldest first: what the sweep after a restart reads to give
-- the calls it cut off an outcome.
CREATE INDEX calls_unfinished ON calls (created_at) WHERE outcome IS NULL;
