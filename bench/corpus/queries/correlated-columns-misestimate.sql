-- family: correlated-columns-misestimate
-- source: PostgreSQL docs 14.2.2 "Extended Statistics" (functional dependencies, CREATE STATISTICS)
-- source: "How the planner multiplies selectivities of correlated columns" (Cybertec, pganalyze)

-- name: carrier-and-country-join
-- schema: logi
-- intent: slow
SELECT s.id, count(e.id) FROM shipments s JOIN tracking_events e ON e.location = 'Hub ' || s.id % 300
WHERE s.carrier_id = 1 AND s.dest_country = 'DE' AND s.status = 'in_transit' GROUP BY s.id;

-- name: status-and-closed-at
-- schema: saas
-- intent: slow
SELECT t.id, e.kind FROM tickets t JOIN ticket_events e ON e.actor_id = t.assignee_id
WHERE t.status = 'closed' AND t.closed_at IS NOT NULL AND t.tenant_id = 4000;

-- name: channel-and-priority
-- schema: saas
-- intent: slow
SELECT t.id, u.email FROM tickets t JOIN users u ON u.id = t.assignee_id
WHERE t.channel = 'phone' AND t.priority = 1;

-- name: carrier-and-country-selective-key
-- schema: logi
-- intent: fine
SELECT id FROM shipments WHERE carrier_id = 1 AND dest_country = 'DE'
  AND tracking_no = 'TRK0000000042';

-- name: status-and-closed-one-ticket
-- schema: saas
-- intent: fine
SELECT id FROM tickets WHERE status = 'closed' AND closed_at IS NOT NULL AND id = 42;

-- name: channel-priority-small
-- schema: saas
-- intent: fine
SELECT t.id FROM tickets t WHERE t.channel = 'phone' AND t.priority = 1 AND t.requester_id = 4242;
