-- family: partial-index-mismatch
-- source: PostgreSQL docs 11.8 "Partial Indexes" (the query's WHERE must imply the index predicate)

-- name: ends-without-status
-- schema: bazaar
-- intent: slow
SELECT id, title, ends_at FROM listings
WHERE ends_at >= '2026-01-20' AND ends_at < '2026-01-21';

-- name: not-sold-ending
-- schema: bazaar
-- intent: slow
SELECT id, title, ends_at FROM listings
WHERE status <> 'sold' AND ends_at < '2026-01-12' AND ends_at > '2026-01-10';

-- name: status-in-two
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE status IN ('active', 'sold') AND ends_at < '2025-11-15' AND ends_at > '2025-11-14';

-- name: active-ending-soon
-- schema: bazaar
-- intent: fine
SELECT id, title, ends_at FROM listings
WHERE status = 'active' AND ends_at >= '2026-01-20' AND ends_at < '2026-01-21';

-- name: active-next-to-end
-- schema: bazaar
-- intent: fine
SELECT id, title, ends_at FROM listings WHERE status = 'active' AND ends_at > '2026-01-10'
ORDER BY ends_at LIMIT 20;
