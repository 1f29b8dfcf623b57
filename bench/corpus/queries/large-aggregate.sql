-- family: large-aggregate
-- source: "Pre-aggregate / materialized views for dashboards": PostgreSQL docs 41.3 Materialized Views
-- source: Citus blog "Rollup tables" (recomputing large aggregates per page view)

-- name: tickets-per-tenant
-- schema: saas
-- intent: slow
SELECT tenant_id, count(*) FROM tickets GROUP BY tenant_id ORDER BY 2 DESC LIMIT 10;

-- name: events-per-kind-per-day
-- schema: saas
-- intent: slow
SELECT kind, date_trunc('day', created_at) AS day, count(*)
FROM ticket_events GROUP BY 1, 2;

-- name: revenue-per-product
-- schema: logi
-- intent: slow
SELECT product_id, sum(qty * unit_price) FROM shipment_items GROUP BY product_id
ORDER BY 2 DESC LIMIT 20;

-- name: avg-weight-per-carrier
-- schema: logi
-- intent: slow
SELECT carrier_id, avg(weight_kg), count(*) FROM shipments GROUP BY carrier_id;

-- name: per-tenant-small-group
-- schema: saas
-- intent: fine
SELECT status, count(*) FROM tickets WHERE tenant_id = 5000 GROUP BY status;

-- name: per-warehouse-inventory-one
-- schema: logi
-- intent: fine
SELECT warehouse_id, sum(qty) FROM inventory WHERE warehouse_id = 3 AND product_id <= 2000
GROUP BY warehouse_id;

-- name: products-per-category
-- schema: logi
-- intent: fine
SELECT category, count(*) FROM products GROUP BY category;

-- name: tenants-per-plan
-- schema: saas
-- intent: fine
SELECT plan, region, count(*) FROM tenants GROUP BY plan, region;

-- name: max-created-index
-- schema: saas
-- intent: fine
SELECT max(created_at) FROM tickets;

-- name: min-max-events-pk
-- schema: saas
-- intent: fine
SELECT min(id), max(id) FROM ticket_events;

-- name: users-per-tenant-range
-- schema: saas
-- intent: fine
SELECT tenant_id, count(*) FROM users WHERE tenant_id BETWEEN 19000 AND 19100 GROUP BY tenant_id;
