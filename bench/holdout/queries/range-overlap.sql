-- family: range-overlap
-- source: Use The Index, Luke! "Ranges: greater, less and BETWEEN" (two open-ended inequalities on two columns)
-- source: PostgreSQL docs 8.17.10 "Range Types: Indexing" (GiST on a range for overlap/containment)

-- name: live-on-day-count
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE created_at <= '2025-06-01' AND ends_at >= '2025-06-01';

-- name: live-on-day-rows
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE ends_at > '2025-06-01 12:00' AND created_at < '2025-06-01 12:00'
ORDER BY price_cents DESC LIMIT 100;

-- name: live-on-day-bounded
-- schema: bazaar
-- intent: fine
SELECT count(*) FROM listings
WHERE created_at BETWEEN '2025-05-01' AND '2025-06-01' AND ends_at >= '2025-06-01';

-- name: live-on-day-one-seller
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id = 4711 AND created_at <= '2025-06-01' AND ends_at >= '2025-06-01';
