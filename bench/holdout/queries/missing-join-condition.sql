-- family: missing-join-condition
-- source: PostgreSQL docs 7.2.1.1 "Joined Tables" (a comma join without a condition is a cross join)
-- source: Markus Winand, "Accidental Cartesian products"

-- name: top-seller-times-country
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings l, members m WHERE l.seller_id = 1 AND m.country = 'IS';

-- name: bids-cross-labels
-- schema: bazaar
-- intent: slow
SELECT b.id, t.slug FROM bids b, labels t WHERE b.amount_cents > 99990;

-- name: one-listing-times-categories
-- schema: bazaar
-- intent: fine
SELECT l.id, c.name FROM listings l, categories c WHERE l.id = 1500000 AND c.parent_id IS NULL;

-- name: small-cross-join
-- schema: bazaar
-- intent: fine
SELECT c.slug, t.slug FROM categories c CROSS JOIN labels t WHERE c.id < 5 AND t.id < 5;
