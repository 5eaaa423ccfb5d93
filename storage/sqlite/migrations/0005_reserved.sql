-- 0005 is reserved for the OAuth2 server's tables (branch a12-oauth); this
-- placeholder keeps the numbering without gaps until that migration lands,
-- and is deleted then.
SELECT 1;
