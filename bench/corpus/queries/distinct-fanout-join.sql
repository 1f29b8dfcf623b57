-- family: distinct-fanout-join
-- source: Markus Winand / Lukas Eder (jOOQ blog), "Don't use DISTINCT when you have or could use semi-joins"

-- name: tenants-with-events
-- schema: saas
-- intent: slow
SELECT DISTINCT t.tenant_id FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id
WHERE e.kind = 'sla_breach';

-- name: customers-with-products
-- schema: logi
-- intent: slow
SELECT DISTINCT s.customer_id FROM shipments s JOIN shipment_items i ON i.shipment_id = s.id
WHERE i.product_id <= 5;

-- name: carriers-with-exceptions
-- schema: logi
-- intent: slow
SELECT DISTINCT c.name FROM carriers c JOIN shipments s ON s.carrier_id = c.id
JOIN tracking_events e ON e.shipment_id = s.id WHERE e.event_type = 'exception';

-- name: agents-who-commented
-- schema: saas
-- intent: slow
SELECT DISTINCT u.id, u.display_name FROM users u JOIN ticket_events e ON e.actor_id = u.id
WHERE e.kind = 'comment';

-- name: exists-semi-join-small
-- schema: logi
-- intent: fine
SELECT c.name FROM carriers c
WHERE EXISTS (SELECT 1 FROM shipments s WHERE s.carrier_id = c.id AND s.tracking_no = 'TRK0000000042');

-- name: distinct-one-ticket
-- schema: saas
-- intent: fine
SELECT DISTINCT e.kind FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id
WHERE t.id = 4242;

-- name: distinct-one-tenant
-- schema: saas
-- intent: fine
SELECT DISTINCT e.actor_id FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id
WHERE t.tenant_id = 5000;

-- name: distinct-small-join
-- schema: saas
-- intent: fine
SELECT DISTINCT t.plan FROM tenants t JOIN teams m ON m.tenant_id = t.id;

-- name: distinct-kinds-ticket-range
-- schema: saas
-- intent: fine
SELECT DISTINCT e.kind FROM ticket_events e WHERE e.ticket_id BETWEEN 100 AND 200;
