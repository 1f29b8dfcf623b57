-- family: whole-table-aggregate
-- source: pganalyze blog "Speeding up count(*)" / PostgreSQL wiki "Slow Counting"

-- name: pagination-total
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE status <> 'expired';

-- name: top-sellers
-- schema: bazaar
-- intent: slow
SELECT seller_id, count(*), avg(price_cents) FROM listings GROUP BY seller_id ORDER BY count(*) DESC LIMIT 10;

-- name: distinct-bidders
-- schema: bazaar
-- intent: slow
SELECT count(DISTINCT bidder_id) FROM bids;

-- name: seller-total
-- schema: bazaar
-- intent: fine
SELECT count(*) FROM listings WHERE seller_id = 4711;

-- name: seller-categories
-- schema: bazaar
-- intent: fine
SELECT category_id, count(*) FROM listings WHERE seller_id = 4711 GROUP BY category_id;

-- name: listing-distinct-bidders
-- schema: bazaar
-- intent: fine
SELECT count(DISTINCT bidder_id) FROM bids WHERE listing_id BETWEEN 1500000 AND 1500100;
