-- family: in-subquery-large
-- source: Markus Winand, "IN (subquery)" / PostgreSQL wiki "Don't Do This" (large semi-joins read both tables)

-- name: members-with-big-bids
-- schema: bazaar
-- intent: slow
SELECT id, handle FROM members WHERE id IN (SELECT bidder_id FROM bids WHERE amount_cents > 90000);

-- name: listings-of-country
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE seller_id IN (SELECT id FROM members WHERE country = 'DE');

-- name: listings-of-handle
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id IN (SELECT id FROM members WHERE handle = 'omar_4711');

-- name: bids-of-ref-code
-- schema: bazaar
-- intent: fine
SELECT id, amount_cents FROM bids WHERE listing_id IN (SELECT id FROM listings WHERE ref_code = '8794150487');
