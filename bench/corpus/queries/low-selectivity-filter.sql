-- family: low-selectivity-filter
-- source: Use The Index, Luke, "Slow indexes" (an index on a column whose value matches most rows)

-- name: big-tenant-tickets
-- schema: saas
-- intent: slow
SELECT id, status, created_at FROM tickets WHERE tenant_id <= 3;

-- name: busy-warehouse-delivered
-- schema: logi
-- intent: slow
SELECT id FROM shipments WHERE warehouse_id BETWEEN 1 AND 30 AND status = 'delivered';

-- name: comment-events
-- schema: saas
-- intent: slow
SELECT id, ticket_id FROM ticket_events WHERE kind IN ('comment', 'status_change');

-- name: rare-status-indexed
-- schema: saas
-- intent: fine
SELECT id FROM tickets WHERE status = 'new' AND tenant_id = 1;

-- name: small-tenant
-- schema: saas
-- intent: fine
SELECT id, status, created_at FROM tickets WHERE tenant_id = 15000;

-- name: one-warehouse-exceptions
-- schema: logi
-- intent: fine
SELECT id FROM shipments WHERE warehouse_id = 7 AND status = 'exception';
