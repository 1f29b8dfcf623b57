-- family: correlated-subquery
-- source: Markus Winand, "Use The Index, Luke" / Modern SQL on correlated subqueries
-- source: Percona, "Correlated subqueries: rewrite as joins"

-- name: last-event-per-ticket-unindexed
-- schema: saas
-- intent: slow
SELECT t.id, (SELECT max(e.created_at) FROM ticket_events e WHERE e.actor_id = t.assignee_id)
FROM tickets t WHERE t.tenant_id = 5000;

-- name: shipments-per-customer-unindexed
-- schema: logi
-- intent: slow
SELECT c.id, (SELECT count(*) FROM shipments s WHERE s.customer_id = c.id) AS n
FROM customers c WHERE c.tier = 'gold';

-- name: items-per-product-unindexed
-- schema: logi
-- intent: slow
SELECT p.id, (SELECT sum(qty) FROM shipment_items i WHERE i.product_id = p.id)
FROM products p WHERE p.category = 'cat-39';

-- name: users-open-tickets-unindexed
-- schema: saas
-- intent: slow
SELECT u.id, (SELECT count(*) FROM tickets t WHERE t.assignee_id = u.id AND t.status = 'open')
FROM users u WHERE u.tenant_id = 19000 AND u.role = 'agent';

-- name: max-in-where-unindexed
-- schema: logi
-- intent: slow
SELECT s.id FROM shipments s
WHERE s.warehouse_id = 3 AND s.status = 'exception'
  AND s.weight_kg = (SELECT max(weight_kg) FROM shipments s2 WHERE s2.customer_id = s.customer_id);

-- name: last-event-per-ticket-indexed
-- schema: saas
-- intent: fine
SELECT t.id, (SELECT max(e.created_at) FROM ticket_events e WHERE e.ticket_id = t.id)
FROM tickets t WHERE t.tenant_id = 5000;

-- name: events-per-shipment-indexed
-- schema: logi
-- intent: fine
SELECT s.id, (SELECT count(*) FROM tracking_events e WHERE e.shipment_id = s.id)
FROM shipments s WHERE s.tracking_no IN ('TRK0000000042', 'TRK0000000043');

-- name: tickets-per-requester-indexed
-- schema: saas
-- intent: fine
SELECT u.id, (SELECT count(*) FROM tickets t WHERE t.requester_id = u.id)
FROM users u WHERE u.tenant_id = 19000;

-- name: carrier-name-small-lookup
-- schema: logi
-- intent: fine
SELECT s.id, (SELECT name FROM carriers c WHERE c.id = s.carrier_id)
FROM shipments s WHERE s.tracking_no = 'TRK0000424242';

-- name: tenant-name-per-ticket-pk
-- schema: saas
-- intent: fine
SELECT t.id, (SELECT name FROM tenants n WHERE n.id = t.tenant_id) FROM tickets t WHERE t.tenant_id = 5000;
