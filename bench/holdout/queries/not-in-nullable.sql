-- family: not-in-nullable
-- source: PostgreSQL wiki "Don't Do This: Don't use NOT IN" (no anti-join; a plain subplan when the hash does not fit work_mem)

-- name: members-never-referrers
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM members WHERE id NOT IN (SELECT referrer_id FROM members);

-- name: listings-without-bids-not-in
-- schema: bazaar
-- intent: slow
SELECT id FROM listings WHERE category_id = 77 AND id NOT IN (SELECT listing_id FROM bids);

-- name: not-in-small-list
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE seller_id = 4711 AND category_id NOT IN (SELECT id FROM categories WHERE meta @> '{"adult": true}');

-- name: not-exists-one-seller
-- schema: bazaar
-- intent: fine
SELECT l.id FROM listings l WHERE l.seller_id = 4711
  AND NOT EXISTS (SELECT 1 FROM listing_labels ll WHERE ll.listing_id = l.id AND ll.label_id = 1);
