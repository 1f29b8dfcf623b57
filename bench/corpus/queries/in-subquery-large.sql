-- family: in-subquery-large
-- source: "EXISTS vs IN" (Use The Index, Luke; Percona, jOOQ blog): a semi-join over a large unindexed side

-- name: tickets-in-sla-breaches
-- schema: saas
-- intent: slow
SELECT count(*) FROM tickets WHERE id IN (SELECT ticket_id FROM ticket_events WHERE kind = 'sla_breach');

-- name: customers-in-exception-shipments
-- schema: logi
-- intent: slow
SELECT id, name FROM customers
WHERE id IN (SELECT customer_id FROM shipments WHERE status = 'exception');

-- name: products-in-bulk-items
-- schema: logi
-- intent: slow
SELECT id FROM products WHERE id IN (SELECT product_id FROM shipment_items WHERE qty >= 5);

-- name: in-subquery-selective
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets
WHERE id IN (SELECT ticket_id FROM ticket_events WHERE ticket_id BETWEEN 4242 AND 4250);

-- name: exists-indexed
-- schema: logi
-- intent: fine
SELECT id FROM shipments s WHERE s.tracking_no = 'TRK0000424242'
  AND EXISTS (SELECT 1 FROM tracking_events e WHERE e.shipment_id = s.id AND e.event_type = 'delivered');

-- name: in-small-subquery
-- schema: logi
-- intent: fine
SELECT id FROM warehouses WHERE country IN (SELECT country FROM carriers WHERE id < 5);
