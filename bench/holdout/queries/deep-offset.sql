-- family: deep-offset
-- source: Use The Index, Luke! "Paging Through Results" / Markus Winand "No Offset"

-- name: page-30000
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings ORDER BY created_at DESC OFFSET 600000 LIMIT 20;

-- name: bids-deep-page
-- schema: bazaar
-- intent: slow
SELECT b.id, l.title FROM bids b JOIN listings l ON l.id = b.listing_id ORDER BY b.id OFFSET 300000 LIMIT 20;

-- name: keyset-page
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE created_at < '2024-05-01' ORDER BY created_at DESC LIMIT 20;

-- name: shallow-page
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings ORDER BY created_at DESC OFFSET 40 LIMIT 20;
