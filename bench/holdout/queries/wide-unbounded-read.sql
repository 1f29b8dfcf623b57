-- family: wide-unbounded-read
-- source: PostgreSQL wiki "Slow Query Questions" (how many rows does the query return, and does the page need them)
-- source: pgMustard blog "SELECT * and wide rows"

-- name: two-months-of-listings
-- schema: bazaar
-- intent: slow
SELECT * FROM listings WHERE created_at >= '2025-01-01' AND created_at < '2025-03-01';

-- name: all-bids-of-top-listings
-- schema: bazaar
-- intent: slow
SELECT b.* FROM bids b WHERE b.listing_id > 1800000;

-- name: one-day-of-listings
-- schema: bazaar
-- intent: fine
SELECT * FROM listings WHERE created_at >= '2025-01-01' AND created_at < '2025-01-02';

-- name: cheap-unindexed-filter
-- schema: bazaar
-- intent: fine
SELECT id, price_cents FROM listings WHERE price_cents BETWEEN 100 AND 102;
