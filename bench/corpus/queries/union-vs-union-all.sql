-- family: union-vs-union-all
-- source: Use The Index, Luke / PostgreSQL docs 7.4 (UNION eliminates duplicates: a sort or hash of both sides)

-- name: union-events-and-tracking
-- schema: saas
-- intent: slow
SELECT ticket_id FROM ticket_events WHERE kind = 'comment'
UNION SELECT id FROM tickets WHERE status = 'closed';

-- name: union-shipment-ids
-- schema: logi
-- intent: slow
SELECT shipment_id FROM shipment_items UNION SELECT shipment_id FROM tracking_events;

-- name: union-users
-- schema: saas
-- intent: slow
SELECT requester_id FROM tickets UNION SELECT id FROM users WHERE role = 'customer';

-- name: union-all-small
-- schema: logi
-- intent: fine
SELECT country FROM warehouses UNION ALL SELECT country FROM carriers;

-- name: union-selective
-- schema: saas
-- intent: fine
SELECT id FROM tickets WHERE requester_id = 4242 UNION SELECT ticket_id FROM ticket_events WHERE ticket_id = 4242;

-- name: union-small-tables
-- schema: logi
-- intent: fine
SELECT country FROM warehouses UNION SELECT country FROM carriers;

-- name: union-medium-tables
-- schema: logi
-- intent: fine
SELECT code FROM customers WHERE tier = 'gold' UNION SELECT sku FROM products WHERE discontinued;
