-- family: not-distinct-from
-- source: PostgreSQL docs 9.2 "Comparison Functions and Operators" (IS [NOT] DISTINCT FROM is not an indexable operator)
-- source: pgsql-hackers threads "IS NOT DISTINCT FROM + Indexing"

-- name: seller-not-distinct
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE seller_id IS NOT DISTINCT FROM 500123;

-- name: bids-listing-not-distinct
-- schema: bazaar
-- intent: slow
SELECT id, amount_cents FROM bids WHERE listing_id IS NOT DISTINCT FROM 1500000;

-- name: seller-equals
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id = 500123;

-- name: small-table-not-distinct
-- schema: bazaar
-- intent: fine
SELECT id, name FROM categories WHERE parent_id IS NOT DISTINCT FROM NULL;
