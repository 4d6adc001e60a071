-- FTS5 folds the small segments its flushes leave into larger ones once `automerge` of them have
-- gathered on a level (4 by default). Every group commit of inbound messages flushes one small
-- segment, so the same entries were merged again and again as the index grew: at 65 536
-- messages the merges were the largest part of what indexing a message cost. At 16 an entry is
-- rewritten about half as often (a level per factor of 16 instead of 4), and a search reads a
-- few more segments. FTS5 keeps the setting in the index's own config table.
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 16);
