-- family: not-in-nullable-subquery
-- source: PostgreSQL wiki, "Don't Do This: Don't use NOT IN"

-- name: users-never-assigned
-- schema: saas
-- intent: slow
SELECT count(*) FROM users WHERE id NOT IN (SELECT assignee_id FROM tickets);

-- name: customers-without-recent-shipment
-- schema: logi
-- intent: slow
SELECT id FROM customers
WHERE id NOT IN (SELECT customer_id FROM shipments WHERE shipped_at > timestamptz '2025-01-01');

-- name: tickets-without-events
-- schema: saas
-- intent: slow
SELECT count(*) FROM tickets WHERE id NOT IN (SELECT ticket_id FROM ticket_events);

-- name: not-exists-rewrite
-- schema: saas
-- intent: fine
SELECT count(*) FROM teams t
WHERE NOT EXISTS (SELECT 1 FROM tickets k WHERE k.requester_id = t.id);

-- name: not-in-small-list-table
-- schema: logi
-- intent: fine
SELECT id FROM warehouses WHERE id NOT IN (SELECT id FROM carriers);

-- name: not-in-constant-list
-- schema: logi
-- intent: fine
SELECT id, status FROM shipments WHERE tracking_no = 'TRK0000000042'
  AND status NOT IN ('returned', 'exception');
