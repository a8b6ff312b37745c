-- Statuses are written and read whole: nothing queries inside one, and a change is judged by its
-- hash. Kept as `json` (like `spec`), a list returns each status as the text it was stored as;
-- as `jsonb` every row was converted back to text, half of PostgreSQL's time in a large list.
ALTER TABLE resources ALTER COLUMN status TYPE json USING status::json;
ALTER TABLE resource_tombstones ALTER COLUMN status TYPE json USING status::json;
