-- family: or-across-columns
-- source: Use The Index, Luke, "Combined conditions"; PostgreSQL docs 11.5 "Combining Multiple Indexes"

-- name: requester-or-assignee
-- schema: saas
-- intent: slow
SELECT id, subject FROM tickets WHERE requester_id = 4242 OR assignee_id = 4242;

-- name: customer-or-country
-- schema: logi
-- intent: slow
SELECT id FROM shipments WHERE customer_id = 17 OR dest_country = 'BG';

-- name: or-with-function
-- schema: saas
-- intent: slow
SELECT id FROM users WHERE id = 5 OR lower(display_name) = 'user number 77';

-- name: ticket-or-actor
-- schema: saas
-- intent: slow
SELECT id FROM ticket_events WHERE ticket_id = 4242 OR actor_id = 4242;

-- name: requester-or-external-ref-bitmap
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE requester_id = 4242 OR external_ref = '1424242';

-- name: tracking-or-id-bitmap
-- schema: logi
-- intent: fine
SELECT id FROM shipments WHERE tracking_no = 'TRK0000000042' OR id = 99;

-- name: or-on-small-table
-- schema: logi
-- intent: fine
SELECT id FROM warehouses WHERE country = 'DE' OR capacity > 30000;

-- name: or-same-column
-- schema: saas
-- intent: fine
SELECT id FROM tickets WHERE requester_id = 4242 OR requester_id = 4243;
