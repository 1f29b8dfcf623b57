-- family: hash-join-huge-build
-- source: PostgreSQL docs 20.4.1 work_mem / hash_mem_multiplier; "Hash join batches" (Cybertec, EDB)

-- name: tickets-join-events-all
-- schema: saas
-- intent: slow
SELECT t.subject, e.kind FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id
WHERE e.kind = 'sla_breach' AND t.priority = 1;

-- name: shipments-join-items-all
-- schema: logi
-- intent: slow
SELECT s.tracking_no, i.qty FROM shipments s JOIN shipment_items i ON i.shipment_id = s.id
WHERE i.qty >= 4;

-- name: users-join-tickets-all
-- schema: saas
-- intent: slow
SELECT u.email, count(*) FROM users u JOIN tickets t ON t.requester_id = u.id
WHERE t.channel = 'phone' GROUP BY u.email ORDER BY 2 DESC LIMIT 10;

-- name: hash-join-small-build
-- schema: logi
-- intent: fine
SELECT s.id, c.name FROM shipments s JOIN carriers c ON c.id = s.carrier_id
WHERE s.shipped_at >= timestamptz '2025-11-20';

-- name: hash-join-selective
-- schema: saas
-- intent: fine
SELECT t.id, m.name FROM tickets t JOIN teams m ON m.id = t.team_id WHERE t.tenant_id = 5000;

-- name: join-recent-shipments-items
-- schema: logi
-- intent: fine
SELECT s.id, i.qty FROM shipments s JOIN shipment_items i ON i.shipment_id = s.id WHERE s.shipped_at >= timestamptz '2025-11-20';
