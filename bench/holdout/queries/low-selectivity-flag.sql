-- family: low-selectivity-flag
-- source: Markus Winand, "Indexing boolean columns" / pganalyze "Partial indexes for rare flags"

-- name: featured-by-price
-- schema: bazaar
-- intent: slow
SELECT id, title, price_cents FROM listings WHERE is_featured ORDER BY price_cents DESC LIMIT 20;

-- name: featured-count-per-category
-- schema: bazaar
-- intent: slow
SELECT category_id, count(*) FROM listings WHERE is_featured GROUP BY category_id;

-- name: unverified-bidders-count
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM bids b JOIN members m ON m.id = b.bidder_id WHERE NOT m.is_verified;

-- name: featured-one-seller
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE is_featured AND seller_id = 4711;

-- name: not-featured-newest
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE NOT is_featured ORDER BY created_at DESC LIMIT 20;

-- name: verified-member-page
-- schema: bazaar
-- intent: fine
SELECT id, handle FROM members WHERE is_verified ORDER BY id LIMIT 50;
