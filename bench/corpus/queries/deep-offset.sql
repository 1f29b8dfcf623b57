-- family: deep-offset
-- source: Use The Index, Luke, "Paging Through Results" / "We need tool support for keyset pagination"

-- name: tickets-page-5000
-- schema: saas
-- intent: slow
SELECT id, subject, status FROM tickets ORDER BY created_at LIMIT 50 OFFSET 250000;

-- name: events-page-deep
-- schema: saas
-- intent: slow
SELECT id, kind FROM ticket_events ORDER BY id LIMIT 100 OFFSET 1500000;

-- name: shipments-page-deep-unindexed
-- schema: logi
-- intent: slow
SELECT id, tracking_no FROM shipments ORDER BY weight_kg, id LIMIT 20 OFFSET 100000;

-- name: tracking-page-deep
-- schema: logi
-- intent: slow
SELECT id, event_type FROM tracking_events ORDER BY id LIMIT 50 OFFSET 2000000;

-- name: tickets-first-page
-- schema: saas
-- intent: fine
SELECT id, subject, status FROM tickets ORDER BY created_at LIMIT 50 OFFSET 100;

-- name: keyset-next-page
-- schema: saas
-- intent: fine
SELECT id, subject, status FROM tickets
WHERE created_at > timestamptz '2024-06-01 10:00' ORDER BY created_at LIMIT 50;

-- name: shipments-keyset
-- schema: logi
-- intent: fine
SELECT id, tracking_no FROM shipments WHERE id > 2500000 ORDER BY id LIMIT 20;

-- name: offset-small-table
-- schema: saas
-- intent: fine
SELECT id, name FROM tenants ORDER BY id LIMIT 20 OFFSET 15000;

-- name: offset-medium-table
-- schema: logi
-- intent: fine
SELECT id, code FROM customers ORDER BY id LIMIT 20 OFFSET 20000;
