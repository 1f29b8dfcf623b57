-- family: top-n-unindexed
-- source: Use The Index, Luke! "Top-N Queries" (pipelined ORDER BY ... LIMIT needs an index in sort order)

-- name: priciest-active
-- schema: bazaar
-- intent: slow
SELECT id, title, price_cents FROM listings WHERE status = 'active' ORDER BY price_cents DESC LIMIT 10;

-- name: biggest-bids
-- schema: bazaar
-- intent: slow
SELECT id, listing_id, amount_cents FROM bids ORDER BY amount_cents DESC LIMIT 10;

-- name: best-rated-members
-- schema: bazaar
-- intent: slow
SELECT m.id, m.handle, count(l.id) FROM members m JOIN listings l ON l.seller_id = m.id
GROUP BY m.id ORDER BY m.rating DESC, count(l.id) DESC LIMIT 10;

-- name: newest-in-category
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE category_id = 77 ORDER BY created_at DESC LIMIT 10;

-- name: priciest-of-seller
-- schema: bazaar
-- intent: fine
SELECT id, title, price_cents FROM listings WHERE seller_id = 4711 ORDER BY price_cents DESC LIMIT 10;
