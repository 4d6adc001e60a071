-- Meta delivers every Page's and Instagram account's events to the application's one
-- callback, naming only the account: its profiles (of any client) are found by network and
-- account id.
CREATE INDEX social_profiles_account ON social_profiles (network, external_id);
