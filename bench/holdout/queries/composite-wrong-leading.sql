-- family: composite-wrong-leading
-- source: Use The Index, Luke! "Concatenated Indexes" (a predicate on the second column alone cannot use the index range)
-- source: PostgreSQL docs 11.3 "Multicolumn Indexes"

-- name: bids-one-day
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM bids WHERE placed_at >= '2025-12-01' AND placed_at < '2025-12-02';

-- name: latest-bid-time
-- schema: bazaar
-- intent: slow
SELECT max(placed_at) FROM bids;

-- name: listings-with-label
-- schema: bazaar
-- intent: slow
SELECT listing_id FROM listing_labels WHERE label_id = 300;

-- name: newest-bids-feed
-- schema: bazaar
-- intent: slow
SELECT listing_id, amount_cents, placed_at FROM bids WHERE placed_at > '2025-12-30'
ORDER BY placed_at DESC LIMIT 20;

-- name: latest-bid-id
-- schema: bazaar
-- intent: fine
SELECT max(id) FROM bids;

-- name: bids-listing-and-time
-- schema: bazaar
-- intent: fine
SELECT count(*) FROM bids WHERE listing_id = 1999000 AND placed_at > '2025-01-01';

-- name: labels-of-listing
-- schema: bazaar
-- intent: fine
SELECT label_id FROM listing_labels WHERE listing_id = 777777;
