-- family: text-search-unindexed
-- source: PostgreSQL docs 12.2.2 "Creating Indexes" for text search (to_tsvector per row without a GIN expression index)

-- name: fts-title-description
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings
WHERE to_tsvector('english', title || ' ' || description) @@ to_tsquery('english', 'brass & lamp')
LIMIT 50;

-- name: fts-title-count
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE to_tsvector('simple', title) @@ plainto_tsquery('simple', 'cork piano');

-- name: fts-categories
-- schema: bazaar
-- intent: fine
SELECT id, name FROM categories WHERE to_tsvector('english', name) @@ to_tsquery('english', 'garden');

-- name: fts-one-seller
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings
WHERE seller_id = 4711 AND to_tsvector('english', title) @@ to_tsquery('english', 'lamp');
