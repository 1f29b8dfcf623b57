-- family: unbounded-select
-- source: "Select only what you need": Percona / PostgreSQL performance tips (no LIMIT over a big table)

-- name: all-events
-- schema: saas
-- intent: slow
SELECT id, ticket_id, kind, created_at FROM ticket_events;

-- name: all-closed-tickets
-- schema: saas
-- intent: slow
SELECT id, status, closed_at FROM tickets WHERE status = 'closed';

-- name: all-delivered
-- schema: logi
-- intent: slow
SELECT id, delivered_at FROM shipments WHERE status = 'delivered';

-- name: all-inventory
-- schema: logi
-- intent: slow
SELECT i.warehouse_id, i.qty, p.sku FROM inventory i JOIN products p ON p.id = i.product_id;

-- name: all-warehouses
-- schema: logi
-- intent: fine
SELECT id, code, country FROM warehouses;

-- name: all-teams
-- schema: saas
-- intent: fine
SELECT id, tenant_id, name FROM teams;

-- name: one-warehouse-inventory
-- schema: logi
-- intent: fine
SELECT product_id, qty FROM inventory WHERE warehouse_id = 7 AND product_id < 500;

-- name: events-of-one-ticket
-- schema: saas
-- intent: fine
SELECT id, kind, created_at, note FROM ticket_events WHERE ticket_id = 77;

-- name: closed-first-page-early-stop
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE status = 'closed' LIMIT 20;

-- name: inventory-one-warehouse-all
-- schema: logi
-- intent: fine
SELECT product_id, qty FROM inventory WHERE warehouse_id = 3;
