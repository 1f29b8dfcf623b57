-- family: unindexed-foreign-key-join
-- source: Use The Index, Luke! "The Join Operation: Nested Loops" / pganalyze "Postgres does not index foreign keys for you"

-- name: bids-of-one-member
-- schema: bazaar
-- intent: slow
SELECT b.id, b.amount_cents, b.placed_at FROM members m JOIN bids b ON b.bidder_id = m.id
WHERE m.handle = 'omar_4711';

-- name: members-referred-by
-- schema: bazaar
-- intent: slow
SELECT r.id, r.handle FROM members m JOIN members r ON r.referrer_id = m.id WHERE m.handle = 'ana_654321';

-- name: bids-of-one-listing-by-ref
-- schema: bazaar
-- intent: fine
SELECT b.id, b.amount_cents FROM listings l JOIN bids b ON b.listing_id = l.id WHERE l.ref_code = '8794150487';

-- name: listings-of-one-member
-- schema: bazaar
-- intent: fine
SELECT l.id, l.title FROM members m JOIN listings l ON l.seller_id = m.id WHERE m.handle = 'omar_4711';
