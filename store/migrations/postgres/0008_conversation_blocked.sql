-- The customer blocked the bot or unsubscribed (the provider refused a send, or told us): sends
-- to the conversation fail at once with that reason until the customer writes again, which
-- clears both columns. blocked_reason keeps the provider's own words.
ALTER TABLE conversations ADD COLUMN blocked_at BIGINT;
ALTER TABLE conversations ADD COLUMN blocked_reason TEXT;
