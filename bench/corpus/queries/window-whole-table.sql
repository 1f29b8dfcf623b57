-- family: window-whole-table
-- source: PostgreSQL docs 3.5 "Window Functions"; Markus Winand, modern-sql.com "window functions and performance"

-- name: rank-all-tickets
-- schema: saas
-- intent: slow
SELECT id, rank() OVER (PARTITION BY tenant_id ORDER BY created_at) FROM tickets;

-- name: latest-event-per-ticket-window
-- schema: saas
-- intent: slow
SELECT * FROM (
  SELECT ticket_id, kind, row_number() OVER (PARTITION BY ticket_id ORDER BY created_at DESC) rn
  FROM ticket_events) x
WHERE rn = 1 AND ticket_id = 4242;

-- name: running-total-shipments
-- schema: logi
-- intent: slow
SELECT id, sum(weight_kg) OVER (PARTITION BY customer_id ORDER BY shipped_at) FROM shipments;

-- name: window-one-tenant
-- schema: saas
-- intent: fine
SELECT id, rank() OVER (ORDER BY created_at) FROM tickets WHERE tenant_id = 5000;

-- name: window-one-shipment
-- schema: logi
-- intent: fine
SELECT id, row_number() OVER (ORDER BY occurred_at) FROM tracking_events WHERE shipment_id = 4242;

-- name: window-small-table
-- schema: logi
-- intent: fine
SELECT id, rank() OVER (PARTITION BY category ORDER BY price DESC) FROM products;

-- name: row-number-medium-table
-- schema: logi
-- intent: fine
SELECT id, row_number() OVER (ORDER BY created_at) FROM customers WHERE country = 'FR';
