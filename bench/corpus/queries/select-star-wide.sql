-- family: select-star-wide
-- source: PostgreSQL wiki "Don't Do This"/ Use The Index, Luke "Index-Only Scan" (SELECT * defeats covering indexes)

-- name: star-tenant-tickets
-- schema: saas
-- intent: slow
SELECT * FROM tickets WHERE tenant_id <= 5;

-- name: star-open-tickets
-- schema: saas
-- intent: slow
SELECT * FROM tickets WHERE status <> 'closed';

-- name: star-recent-shipments
-- schema: logi
-- intent: slow
SELECT * FROM shipments WHERE shipped_at >= timestamptz '2025-03-01';

-- name: star-products
-- schema: logi
-- intent: fine
SELECT * FROM products WHERE category = 'cat-3';

-- name: star-one-ticket
-- schema: saas
-- intent: fine
SELECT * FROM tickets WHERE id = 42;

-- name: star-tenant-small
-- schema: saas
-- intent: fine
SELECT * FROM tickets WHERE tenant_id = 5000;

-- name: covering-columns
-- schema: saas
-- intent: fine
SELECT tenant_id, created_at FROM tickets WHERE tenant_id = 19999;
