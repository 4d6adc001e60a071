-- SQLite's full-text index takes a merge setting in its 0021; PostgreSQL's GIN index has no
-- counterpart. The file keeps both engines' migrations under the same names.
SELECT 1;
