-- family: cte-fence
-- source: PostgreSQL docs 7.8.1 "WITH ... MATERIALIZED" (a materialized CTE is computed whole; predicates are not pushed in)
-- source: PostgreSQL 12 release notes (CTE inlining)

-- name: materialized-listings-then-filter
-- schema: bazaar
-- intent: slow
WITH l AS MATERIALIZED (SELECT id, title, seller_id FROM listings)
SELECT * FROM l WHERE seller_id = 500123;

-- name: materialized-aggregate-then-filter
-- schema: bazaar
-- intent: slow
WITH top AS MATERIALIZED (SELECT listing_id, max(amount_cents) AS best FROM bids GROUP BY listing_id)
SELECT * FROM top WHERE listing_id = 1500000;

-- name: inlined-listings-then-filter
-- schema: bazaar
-- intent: fine
WITH l AS (SELECT id, title, seller_id FROM listings)
SELECT * FROM l WHERE seller_id = 500123;

-- name: not-materialized-aggregate
-- schema: bazaar
-- intent: fine
WITH top AS NOT MATERIALIZED (SELECT listing_id, max(amount_cents) AS best FROM bids GROUP BY listing_id)
SELECT * FROM top WHERE listing_id = 1500000;
