-- family: unindexed-fk-join
-- source: Cybertec, "Index your foreign key"; PostgreSQL docs 5.4.5 (FK columns are not indexed automatically)

-- name: customer-shipments
-- schema: logi
-- intent: slow
SELECT s.id, s.tracking_no FROM customers c JOIN shipments s ON s.customer_id = c.id
WHERE c.code = 'C0031337';

-- name: product-items
-- schema: logi
-- intent: slow
SELECT i.shipment_id, i.qty FROM products p JOIN shipment_items i ON i.product_id = p.id
WHERE p.sku = 'SKU-019999';

-- name: agent-assigned-tickets
-- schema: saas
-- intent: slow
SELECT t.id, t.subject FROM users u JOIN tickets t ON t.assignee_id = u.id
WHERE u.email = 'User4242@Mail71.example.COM';

-- name: agent-events
-- schema: saas
-- intent: slow
SELECT e.id, e.kind FROM users u JOIN ticket_events e ON e.actor_id = u.id
WHERE u.email = 'User4242@Mail71.example.COM';

-- name: team-tickets
-- schema: saas
-- intent: slow
SELECT t.id FROM teams m JOIN tickets t ON t.team_id = m.id WHERE m.name = 'team 77';

-- name: requester-tickets-indexed
-- schema: saas
-- intent: fine
SELECT t.id, t.subject FROM users u JOIN tickets t ON t.requester_id = u.id
WHERE u.email = 'User4242@Mail71.example.COM';

-- name: shipment-events-indexed
-- schema: logi
-- intent: fine
SELECT e.id, e.event_type FROM shipments s JOIN tracking_events e ON e.shipment_id = s.id
WHERE s.tracking_no = 'TRK0000424242';

-- name: shipment-items-pk
-- schema: logi
-- intent: fine
SELECT i.line, i.qty FROM shipments s JOIN shipment_items i ON i.shipment_id = s.id
WHERE s.tracking_no = 'TRK0000424242';

-- name: fk-join-small-parent
-- schema: logi
-- intent: fine
SELECT w.code, s.id FROM shipments s JOIN warehouses w ON w.id = s.warehouse_id
WHERE s.tracking_no = 'TRK0000424242';
