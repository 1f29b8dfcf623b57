-- family: cte-materialized
-- source: PostgreSQL docs 7.8.3 "Common Table Expression Materialization" (MATERIALIZED is an optimization fence)

-- name: materialized-all-tickets
-- schema: saas
-- intent: slow
WITH t AS MATERIALIZED (SELECT id, tenant_id, status FROM tickets)
SELECT * FROM t WHERE id = 4242;

-- name: materialized-shipments-then-filter
-- schema: logi
-- intent: slow
WITH s AS MATERIALIZED (SELECT id, customer_id, tracking_no FROM shipments)
SELECT id FROM s WHERE tracking_no = 'TRK0000424242';

-- name: cte-used-twice
-- schema: saas
-- intent: slow
WITH e AS (SELECT ticket_id, kind FROM ticket_events)
SELECT count(*) FROM e a JOIN e b ON a.ticket_id = b.ticket_id WHERE a.kind = 'sla_breach' AND b.ticket_id = 42;

-- name: inlined-cte
-- schema: saas
-- intent: fine
WITH t AS (SELECT id, tenant_id, status FROM tickets)
SELECT * FROM t WHERE id = 4242;

-- name: materialized-small-set
-- schema: logi
-- intent: fine
WITH s AS MATERIALIZED (SELECT id FROM shipments WHERE tracking_no = 'TRK0000424242')
SELECT e.event_type FROM s JOIN tracking_events e ON e.shipment_id = s.id;

-- name: materialized-small-table
-- schema: logi
-- intent: fine
WITH c AS MATERIALIZED (SELECT id, country FROM carriers)
SELECT id FROM c WHERE country = 'DE';
