-- family: ilike-contains
-- source: Use The Index, Luke! "Indexing LIKE Filters" (a leading wildcard cannot use a B-tree)
-- source: PostgreSQL docs F.35 pg_trgm "Index Support" (ILIKE '%x%' needs a trigram index)

-- name: title-ilike-two-words
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE title ILIKE '%brass%lamp%';

-- name: email-domain-ilike
-- schema: bazaar
-- intent: slow
SELECT l.id, l.title FROM listings l JOIN members m ON m.id = l.seller_id
WHERE m.email ILIKE '%.4711@%';

-- name: title-ilike-rare-newest
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE title ILIKE '%giant cork piano%' ORDER BY created_at DESC LIMIT 20;

-- name: title-ilike-common-newest
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE title ILIKE '%lamp%' ORDER BY created_at DESC LIMIT 20;

-- name: handle-prefix-like
-- schema: bazaar
-- intent: fine
SELECT id, handle FROM members WHERE handle LIKE 'omar_471%';

-- name: category-name-ilike
-- schema: bazaar
-- intent: fine
SELECT id, name FROM categories WHERE name ILIKE '%garden%';

-- name: ref-code-suffix
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE ref_code LIKE '%50487';

-- name: ref-code-prefix
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE ref_code LIKE '8794150%';
