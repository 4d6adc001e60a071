-- SQLite's full-text index takes a second merge setting in its 0022; PostgreSQL's GIN index has
-- no counterpart. The file keeps both engines' migrations under the same names.
SELECT 1;
