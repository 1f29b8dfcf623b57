-- family: array-overlap-no-gin
-- source: https://www.postgresql.org/docs/current/gin-builtin-opclasses.html
-- source: https://lukedevnotes.com/en/posts/postgresql-gin-index-optimization-part-3
-- Array operators (&&, @>, = ANY(column)) are indexable only by GIN; otherwise every row's array
-- is unpacked and compared. Fine when a primary key or another index narrows the rows.

-- name: customers-with-vip-tag
-- schema: ledger
-- intent: slow
SELECT id, full_name, email FROM customers WHERE tags @> ARRAY['vip'];

-- name: customers-with-any-of-tags
-- schema: ledger
-- intent: slow
SELECT country, count(*) FROM customers WHERE tags && ARRAY['t33', 't38', 't39'] GROUP BY country;

-- name: tag-in-any-element
-- schema: ledger
-- intent: slow
SELECT id, created_at FROM customers WHERE 't37' = ANY (tags) ORDER BY created_at DESC;

-- name: tags-of-listed-customers
-- schema: ledger
-- intent: fine
SELECT id, tags FROM customers WHERE id = ANY (ARRAY[10, 20, 30, 40, 50, 60]) AND tags && ARRAY['t0', 't1'];

-- name: vip-among-newest
-- schema: ledger
-- intent: fine
SELECT id, tags FROM customers
WHERE created_at >= timestamptz '2025-12-30 00:00+00' AND 'vip' = ANY (tags);

-- name: common-tag-newest-first
-- schema: ledger
-- intent: fine
SELECT id, full_name FROM customers WHERE tags @> ARRAY['t0'] ORDER BY created_at DESC LIMIT 10;

-- name: tags-of-one-month-signups
-- schema: ledger
-- intent: fine
SELECT count(*) FROM customers
WHERE created_at >= timestamptz '2025-03-01 00:00+00' AND created_at < timestamptz '2025-04-01 00:00+00'
  AND tags && ARRAY['t33', 't38', 't39'];
