-- family: null-filter-unindexed
-- source: Use The Index, Luke, "Indexing NULL" / PostgreSQL partial indexes (docs 11.8)

-- name: unassigned-tickets
-- schema: saas
-- intent: slow
SELECT id, subject FROM tickets WHERE assignee_id IS NULL AND team_id IS NULL;

-- name: undelivered-shipments
-- schema: logi
-- intent: slow
SELECT id, tracking_no FROM shipments WHERE delivered_at IS NULL AND status <> 'returned';

-- name: never-logged-in
-- schema: saas
-- intent: slow
SELECT id, email FROM users WHERE last_login_at IS NULL AND deleted_at IS NULL;

-- name: null-filter-small
-- schema: saas
-- intent: fine
SELECT id FROM tenants WHERE settings IS NULL AND plan = 'enterprise';

-- name: null-filter-with-key
-- schema: saas
-- intent: fine
SELECT id FROM tickets WHERE closed_at IS NULL AND requester_id = 4242;

-- name: null-filter-medium
-- schema: logi
-- intent: fine
SELECT id FROM customers WHERE email IS NULL AND tier = 'gold';
