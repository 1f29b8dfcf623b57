-- family: array-any
-- source: PostgreSQL docs 8.15.5 "Searching in Arrays" (searching arrays without a GIN index scans every row)
-- source: PostgreSQL docs 11.2 "Index Types" (GIN array_ops serve @>, <@, &&, = ANY does not)

-- name: keyword-any-active
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE 'vintage' = ANY (keywords) AND status = 'active';

-- name: keywords-overlap-count
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE keywords && ARRAY['kw17', 'kw88'];

-- name: keywords-contain-both
-- schema: bazaar
-- intent: slow
SELECT id FROM listings WHERE keywords @> ARRAY['kw3', 'kw4'] ORDER BY price_cents LIMIT 50;

-- name: pk-any-array
-- schema: bazaar
-- intent: fine
SELECT id, title, price_cents FROM listings WHERE id = ANY (ARRAY[101, 2002, 30003, 400004, 1500000]);

-- name: seller-any-array
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id = ANY ('{500123,612345,799001}'::int[]);

-- name: keyword-any-one-seller
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id = 4711 AND 'vintage' = ANY (keywords);
