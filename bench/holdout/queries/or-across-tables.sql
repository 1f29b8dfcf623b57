-- family: or-across-tables
-- source: pgMustard blog / Cybertec "Avoiding OR for better query performance" (OR over two joined tables defeats both indexes)
-- source: Use The Index, Luke! "Combining conditions with OR"

-- name: seller-handle-or-ref
-- schema: bazaar
-- intent: slow
SELECT l.id, l.title FROM listings l JOIN members m ON m.id = l.seller_id
WHERE m.handle = 'omar_4711' OR l.ref_code = '8794150487';

-- name: bids-seller-or-bidder
-- schema: bazaar
-- intent: slow
SELECT b.id, b.amount_cents FROM bids b JOIN listings l ON l.id = b.listing_id
WHERE l.seller_id = 500123 OR b.bidder_id = 612345;

-- name: one-table-or-bitmap
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id = 500123 OR ref_code = '8794150487';

-- name: union-rewrite
-- schema: bazaar
-- intent: fine
SELECT l.id, l.title FROM listings l JOIN members m ON m.id = l.seller_id WHERE m.handle = 'omar_4711'
UNION
SELECT id, title FROM listings WHERE ref_code = '8794150487';
