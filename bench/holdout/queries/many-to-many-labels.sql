-- family: many-to-many-labels
-- source: Stack Overflow "SQL many-to-many: select items having all tags" (relational division)
-- source: Use The Index, Luke! "Join: index the join column of the inner side"

-- name: labels-intersection
-- schema: bazaar
-- intent: slow
SELECT listing_id FROM listing_labels WHERE label_id IN (5, 9) GROUP BY listing_id HAVING count(*) = 2;

-- name: newest-with-rare-label
-- schema: bazaar
-- intent: slow
SELECT l.id, l.title FROM listings l
JOIN listing_labels ll ON ll.listing_id = l.id JOIN labels t ON t.id = ll.label_id
WHERE t.slug = 'label-300' ORDER BY l.created_at DESC LIMIT 20;

-- name: newest-with-popular-label
-- schema: bazaar
-- intent: fine
SELECT l.id, l.title FROM listings l
JOIN listing_labels ll ON ll.listing_id = l.id JOIN labels t ON t.id = ll.label_id
WHERE t.slug = 'label-1' ORDER BY l.created_at DESC LIMIT 20;

-- name: labels-of-listing-join
-- schema: bazaar
-- intent: fine
SELECT t.slug FROM listing_labels ll JOIN labels t ON t.id = ll.label_id WHERE ll.listing_id = 123456;
