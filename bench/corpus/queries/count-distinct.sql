-- family: count-distinct
-- source: Citus/pganalyze "count(distinct) is slow: HyperLogLog"; PostgreSQL docs 9.21 aggregate functions

-- name: distinct-requesters
-- schema: saas
-- intent: slow
SELECT count(DISTINCT requester_id) FROM tickets;

-- name: distinct-customers-per-carrier
-- schema: logi
-- intent: slow
SELECT carrier_id, count(DISTINCT customer_id) FROM shipments GROUP BY carrier_id;

-- name: distinct-actors
-- schema: saas
-- intent: slow
SELECT count(DISTINCT actor_id) FROM ticket_events;

-- name: distinct-one-tenant
-- schema: saas
-- intent: fine
SELECT count(DISTINCT requester_id) FROM tickets WHERE tenant_id = 5000;

-- name: distinct-small
-- schema: logi
-- intent: fine
SELECT count(DISTINCT category) FROM products;

-- name: distinct-one-shipment
-- schema: logi
-- intent: fine
SELECT count(DISTINCT event_type) FROM tracking_events WHERE shipment_id = 4242;
