-- FTS5 merges a level's segments a little at each flush once `automerge` of them have gathered
-- there, but merges a whole level at once, in the commit that reaches it, once `crisismerge` have
-- (16 by default), and then the level above if that one is full too. With `automerge` at 16
-- (0021) the two met: every sixteenth flush merged a whole level in one go, and every 256th two
-- levels, which held the ingest's writer for tens of milliseconds. At 64 the incremental merges
-- have room to keep every level below it, as they do at FTS5's defaults (4 and 16).
INSERT INTO messages_fts (messages_fts, rank) VALUES ('crisismerge', 64);
