-- family: count-large-table
-- source: PostgreSQL wiki, "Slow Counting"; Citus blog "Faster PostgreSQL counting"

-- name: count-events
-- schema: saas
-- intent: slow
SELECT count(*) FROM ticket_events;

-- name: count-tracking
-- schema: logi
-- intent: slow
SELECT count(*) FROM tracking_events;

-- name: count-closed
-- schema: saas
-- intent: slow
SELECT count(*) FROM tickets WHERE status = 'closed';

-- name: count-items
-- schema: logi
-- intent: slow
SELECT count(*) FROM shipment_items WHERE qty > 0;

-- name: count-one-tenant
-- schema: saas
-- intent: fine
SELECT count(*) FROM tickets WHERE tenant_id = 5000;

-- name: count-open-indexed
-- schema: saas
-- intent: fine
SELECT count(*) FROM tickets WHERE status = 'new' AND created_at > now() - interval '1 day';

-- name: count-customers
-- schema: logi
-- intent: fine
SELECT count(*) FROM customers;

-- name: count-one-shipment-events
-- schema: logi
-- intent: fine
SELECT count(*) FROM tracking_events WHERE shipment_id = 4242;

-- name: count-recent-index-only
-- schema: saas
-- intent: fine
SELECT count(*) FROM tickets WHERE created_at >= timestamptz '2026-10-01';

-- name: count-events-ticket-range
-- schema: saas
-- intent: fine
SELECT count(*) FROM ticket_events WHERE ticket_id BETWEEN 1 AND 50000;

-- name: exists-any-closed
-- schema: saas
-- intent: fine
SELECT EXISTS (SELECT 1 FROM tickets WHERE status = 'closed');
