-- family: latest-per-group
-- source: PostgreSQL wiki / Stack Overflow "Select first row in each GROUP BY group" (Erwin Brandstetter's answer)
-- source: Use The Index, Luke! "Top-N per group" with LATERAL

-- name: correlated-max-all-bids
-- schema: bazaar
-- intent: slow
SELECT b.id, b.listing_id, b.amount_cents FROM bids b
WHERE b.placed_at = (SELECT max(b2.placed_at) FROM bids b2 WHERE b2.listing_id = b.listing_id);

-- name: self-join-no-newer
-- schema: bazaar
-- intent: slow
SELECT b.id, b.listing_id FROM bids b
LEFT JOIN bids newer ON newer.listing_id = b.listing_id AND newer.placed_at > b.placed_at
WHERE newer.id IS NULL;

-- name: distinct-on-bidder
-- schema: bazaar
-- intent: slow
SELECT DISTINCT ON (bidder_id) bidder_id, amount_cents, placed_at FROM bids
ORDER BY bidder_id, placed_at DESC;

-- name: distinct-on-few-listings
-- schema: bazaar
-- intent: fine
SELECT DISTINCT ON (listing_id) listing_id, amount_cents, placed_at FROM bids
WHERE listing_id IN (1500000, 1500001, 1500002, 1999999)
ORDER BY listing_id, placed_at DESC;

-- name: lateral-last-bid
-- schema: bazaar
-- intent: fine
SELECT l.id, lb.amount_cents FROM listings l
CROSS JOIN LATERAL (SELECT amount_cents FROM bids b WHERE b.listing_id = l.id ORDER BY placed_at DESC LIMIT 1) lb
WHERE l.seller_id = 4711;

-- name: correlated-max-one-listing
-- schema: bazaar
-- intent: fine
SELECT b.id, b.amount_cents FROM bids b
WHERE b.listing_id = 1500000
  AND b.placed_at = (SELECT max(b2.placed_at) FROM bids b2 WHERE b2.listing_id = b.listing_id);
