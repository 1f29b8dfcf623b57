-- family: left-join-anti-unindexed
-- source: "LEFT JOIN / IS NULL vs NOT EXISTS" (explainextended.com, Quassnoi); anti-join on an unindexed key

-- name: agents-without-events
-- schema: saas
-- intent: slow
SELECT u.id FROM users u LEFT JOIN ticket_events e ON e.actor_id = u.id
WHERE e.id IS NULL AND u.role = 'agent';

-- name: customers-without-shipments
-- schema: logi
-- intent: slow
SELECT c.id FROM customers c LEFT JOIN shipments s ON s.customer_id = c.id WHERE s.id IS NULL;

-- name: products-never-shipped
-- schema: logi
-- intent: slow
SELECT p.id FROM products p WHERE NOT EXISTS (SELECT 1 FROM shipment_items i WHERE i.product_id = p.id);

-- name: shipments-without-events-indexed
-- schema: logi
-- intent: fine
SELECT s.id FROM shipments s LEFT JOIN tracking_events e ON e.shipment_id = s.id
WHERE e.id IS NULL AND s.tracking_no IN ('TRK0000000042', 'TRK0000424242');

-- name: tenants-without-teams-small
-- schema: saas
-- intent: fine
SELECT t.id FROM tenants t LEFT JOIN teams m ON m.tenant_id = t.id WHERE m.id IS NULL;

-- name: anti-join-one-ticket
-- schema: saas
-- intent: fine
SELECT t.id FROM tickets t WHERE t.id = 4242
  AND NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id);
