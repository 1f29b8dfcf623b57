-- family: union-dedupe
-- source: Use The Index, Luke! / PostgreSQL docs 7.4 "Combining Queries" (UNION removes duplicates: a sort or hash of both inputs)

-- name: all-trading-members
-- schema: bazaar
-- intent: slow
SELECT bidder_id AS member_id FROM bids UNION SELECT seller_id FROM listings;

-- name: listings-bid-or-labelled
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM (SELECT listing_id FROM bids WHERE amount_cents > 1000
                      UNION SELECT listing_id FROM listing_labels) t;

-- name: one-listing-parties
-- schema: bazaar
-- intent: fine
SELECT seller_id AS member_id FROM listings WHERE id = 1500000
UNION SELECT bidder_id FROM bids WHERE listing_id = 1500000;

-- name: union-all-small
-- schema: bazaar
-- intent: fine
SELECT id, name FROM categories WHERE parent_id IS NULL
UNION ALL SELECT id, name FROM labels WHERE id <= 10;
