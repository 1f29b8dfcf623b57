-- family: jsonb-containment
-- source: PostgreSQL docs 8.14.4 "jsonb Indexing" (@> needs a GIN index; a btree on ->> does not serve it)
-- source: pganalyze blog "Understanding Postgres GIN Indexes"

-- name: brand-and-color-count
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE attrs @> '{"brand": "Nordvik", "color": "teal"}';

-- name: refurbished-cheap
-- schema: bazaar
-- intent: slow
SELECT id, title, price_cents FROM listings
WHERE attrs @> '{"condition": "refurbished"}' AND price_cents < 2000;

-- name: rare-brand-containment
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE attrs @> '{"brand": "Zephyrine"}';

-- name: rare-brand-expression-index
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE attrs ->> 'brand' = 'Zephyrine';

-- name: seller-and-containment
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id = 4711 AND attrs @> '{"color": "teal"}';

-- name: small-table-containment
-- schema: bazaar
-- intent: fine
SELECT id, name FROM categories WHERE meta @> '{"adult": true}';
