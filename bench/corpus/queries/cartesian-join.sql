-- family: cartesian-join
-- source: PostgreSQL docs 7.2.1.1 (CROSS JOIN); "Missing join condition" in Oracle/SQL Server tuning guides

-- name: tickets-times-teams
-- schema: saas
-- intent: slow
SELECT count(*) FROM tickets t, teams m WHERE t.tenant_id = 1 AND m.tenant_id > 50;

-- name: shipments-times-carriers
-- schema: logi
-- intent: slow
SELECT s.id, c.name FROM shipments s, carriers c WHERE s.status = 'exception';

-- name: users-times-sla
-- schema: saas
-- intent: slow
SELECT u.id, p.name FROM users u, sla_policies p WHERE u.role = 'customer' AND u.tenant_id = 1;

-- name: forgotten-join-condition
-- schema: logi
-- intent: slow
SELECT count(*) FROM customers c, shipments s WHERE c.tier = 'gold' AND s.warehouse_id = 1
  AND s.status = 'in_transit';

-- name: small-cross-join
-- schema: logi
-- intent: fine
SELECT w.code, c.name FROM warehouses w CROSS JOIN carriers c;

-- name: cross-join-one-row
-- schema: saas
-- intent: fine
SELECT t.id, p.name FROM tickets t CROSS JOIN sla_policies p WHERE t.id = 42;

-- name: cross-join-generate-series
-- schema: saas
-- intent: fine
SELECT d::date, count(t.id) FROM generate_series(timestamptz '2024-01-01', '2024-01-07', '1 day') d
LEFT JOIN tickets t ON t.created_at >= d AND t.created_at < d + interval '1 hour' GROUP BY 1;
