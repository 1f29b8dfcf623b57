-- family: sort-for-limit
-- source: Use The Index, Luke, "Top-N queries" (pipelined ORDER BY ... LIMIT via an index)
-- source: pgbench accounts "ORDER BY abalance DESC LIMIT 10" (issue 10)

-- name: top-weight
-- schema: logi
-- intent: slow
SELECT id, tracking_no, weight_kg FROM shipments ORDER BY weight_kg DESC LIMIT 10;

-- name: latest-updated
-- schema: saas
-- intent: slow
SELECT id, subject FROM tickets ORDER BY updated_at DESC LIMIT 20;

-- name: latest-events
-- schema: saas
-- intent: slow
SELECT id, ticket_id, kind FROM ticket_events ORDER BY created_at DESC LIMIT 50;

-- name: recent-logins
-- schema: saas
-- intent: slow
SELECT id, email FROM users ORDER BY last_login_at DESC NULLS LAST LIMIT 25;

-- name: latest-tracking
-- schema: logi
-- intent: slow
SELECT id, shipment_id FROM tracking_events ORDER BY occurred_at DESC LIMIT 10;

-- name: latest-created-indexed
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets ORDER BY created_at DESC LIMIT 20;

-- name: latest-shipped-indexed
-- schema: logi
-- intent: fine
SELECT id, tracking_no FROM shipments ORDER BY shipped_at DESC LIMIT 10;

-- name: tenant-latest-indexed
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE tenant_id = 1 ORDER BY created_at DESC LIMIT 20;

-- name: sort-small-table
-- schema: saas
-- intent: fine
SELECT id, name FROM tenants ORDER BY created_at DESC LIMIT 10;

-- name: sort-selective-filter
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE requester_id = 4242 ORDER BY updated_at DESC LIMIT 5;

-- name: newest-id-pk
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets ORDER BY id DESC LIMIT 10;

-- name: top-viewed-articles-medium
-- schema: saas
-- intent: fine
SELECT id, title FROM kb_articles ORDER BY views DESC LIMIT 10;
