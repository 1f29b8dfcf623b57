-- family: nested-loop-large-inner
-- source: PostgreSQL docs 14.1 "Using EXPLAIN" (nested loop cost = outer rows × inner scan)
-- source: Cybertec "Join strategies and performance in PostgreSQL"

-- name: tenant-tickets-events-by-actor
-- schema: saas
-- intent: slow
SELECT t.id, e.id FROM tickets t JOIN ticket_events e
  ON e.actor_id = t.assignee_id AND e.created_at > t.created_at
WHERE t.tenant_id = 5000;

-- name: range-join-events
-- schema: logi
-- intent: slow
SELECT s.id, count(e.id) FROM shipments s JOIN tracking_events e
  ON e.occurred_at BETWEEN s.shipped_at AND s.shipped_at + interval '10 seconds'
WHERE s.warehouse_id = 5 AND s.status = 'exception' GROUP BY s.id;

-- name: lateral-unindexed
-- schema: saas
-- intent: slow
SELECT u.id, l.n FROM users u
CROSS JOIN LATERAL (SELECT count(*) AS n FROM ticket_events e WHERE e.actor_id = u.id) l
WHERE u.tenant_id = 19000;

-- name: lateral-indexed
-- schema: saas
-- intent: fine
SELECT t.id, l.n FROM tickets t
CROSS JOIN LATERAL (SELECT count(*) AS n FROM ticket_events e WHERE e.ticket_id = t.id) l
WHERE t.tenant_id = 5000;

-- name: nested-loop-indexed-inner
-- schema: logi
-- intent: fine
SELECT s.id, e.event_type FROM shipments s JOIN tracking_events e ON e.shipment_id = s.id
WHERE s.shipped_at >= timestamptz '2025-01-01' AND s.shipped_at < timestamptz '2025-01-01 00:30';

-- name: nested-loop-small-inner
-- schema: logi
-- intent: fine
SELECT s.id, w.code FROM shipments s JOIN warehouses w ON w.capacity > s.weight_kg * 1000
WHERE s.tracking_no = 'TRK0000424242';

-- name: tickets-with-requesters-indexed
-- schema: saas
-- intent: fine
SELECT t.id, u.email FROM tickets t JOIN users u ON u.id = t.requester_id WHERE t.tenant_id = 5000;
