-- family: scalar-subquery-per-row
-- source: pgMustard glossary "SubPlan" (a correlated subquery re-executed once per outer row)
-- source: Markus Winand, "Correlated subqueries in the select list"

-- name: bid-count-per-member
-- schema: bazaar
-- intent: slow
SELECT m.id, m.handle, (SELECT count(*) FROM bids b WHERE b.bidder_id = m.id) AS bids
FROM members m WHERE m.country = 'IS';

-- name: label-count-per-label
-- schema: bazaar
-- intent: slow
SELECT t.id, t.slug, (SELECT count(*) FROM listing_labels ll WHERE ll.label_id = t.id) AS uses FROM labels t;

-- name: bid-count-per-listing
-- schema: bazaar
-- intent: fine
SELECT l.id, (SELECT count(*) FROM bids b WHERE b.listing_id = l.id) AS bids FROM listings l WHERE l.seller_id = 4711;

-- name: listing-count-per-member-range
-- schema: bazaar
-- intent: fine
SELECT m.id, (SELECT count(*) FROM listings l WHERE l.seller_id = m.id) FROM members m WHERE m.id BETWEEN 5000 AND 5100;
