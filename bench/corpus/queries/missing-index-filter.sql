-- family: missing-index-filter
-- source: Use The Index, Luke (Markus Winand), "The Where Clause"
-- source: PostgreSQL docs, "Indexes" (11.1 Introduction)

-- name: tickets-by-assignee
-- schema: saas
-- intent: slow
SELECT id, subject, status FROM tickets WHERE assignee_id = 4242;

-- name: events-by-actor
-- schema: saas
-- intent: slow
SELECT id, ticket_id, kind, created_at FROM ticket_events WHERE actor_id = 777;

-- name: shipments-by-customer
-- schema: logi
-- intent: slow
SELECT id, tracking_no, status FROM shipments WHERE customer_id = 31337;

-- name: items-by-product
-- schema: logi
-- intent: slow
SELECT shipment_id, qty FROM shipment_items WHERE product_id = 19999;

-- name: tickets-by-requester-indexed
-- schema: saas
-- intent: fine
SELECT id, subject, status FROM tickets WHERE requester_id = 4242;

-- name: events-by-ticket-indexed
-- schema: saas
-- intent: fine
SELECT id, kind, created_at FROM ticket_events WHERE ticket_id = 123456;

-- name: shipment-by-tracking-no
-- schema: logi
-- intent: fine
SELECT id, status, delivered_at FROM shipments WHERE tracking_no = 'TRK0000424242';

-- name: customers-by-country-medium
-- schema: logi
-- intent: fine
SELECT id, name FROM customers WHERE email = 'buyer4242@shop.example';

-- name: articles-by-views-medium
-- schema: saas
-- intent: fine
SELECT id, title FROM kb_articles WHERE views > 9000;

-- name: customers-by-country-tier-medium
-- schema: logi
-- intent: fine
SELECT id, name FROM customers WHERE country = 'DE' AND tier = 'gold';
