-- family: exists-unindexed
-- source: pgMustard glossary "Hash Semi Join" / "Hash Anti Join" (EXISTS on an unindexed column reads the whole inner table)
-- source: Markus Winand, "Correlated subqueries" (the correlation column needs an index)

-- name: members-with-retracted-bid
-- schema: bazaar
-- intent: slow
SELECT m.id, m.handle FROM members m
WHERE m.country = 'IS' AND EXISTS (SELECT 1 FROM bids b WHERE b.bidder_id = m.id AND b.retracted);

-- name: new-members-never-bid
-- schema: bazaar
-- intent: slow
SELECT m.id, m.handle FROM members m
WHERE m.joined_at >= '2025-10-01'
  AND NOT EXISTS (SELECT 1 FROM bids b WHERE b.bidder_id = m.id);

-- name: sellers-with-label
-- schema: bazaar
-- intent: slow
SELECT l.id FROM listings l
WHERE l.category_id = 77 AND EXISTS (SELECT 1 FROM listing_labels ll WHERE ll.listing_id = l.id AND ll.label_id = 300)
  AND EXISTS (SELECT 1 FROM bids b WHERE b.bidder_id = l.seller_id);

-- name: listings-with-bids-one-seller
-- schema: bazaar
-- intent: fine
SELECT l.id FROM listings l
WHERE l.seller_id = 4711 AND EXISTS (SELECT 1 FROM bids b WHERE b.listing_id = l.id);

-- name: members-range-with-listings
-- schema: bazaar
-- intent: fine
SELECT m.id, m.handle FROM members m
WHERE m.id BETWEEN 1000 AND 1100 AND EXISTS (SELECT 1 FROM listings l WHERE l.seller_id = m.id);

-- name: listing-not-exists-bids
-- schema: bazaar
-- intent: fine
SELECT l.id FROM listings l
WHERE l.seller_id = 500123 AND NOT EXISTS (SELECT 1 FROM bids b WHERE b.listing_id = l.id);
