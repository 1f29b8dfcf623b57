-- family: large-in-list
-- source: "IN list vs ANY(array) vs VALUES join" (Datadog/Crunchy Data blogs); jOOQ "IN-list padding"

-- name: in-list-unindexed
-- schema: saas
-- intent: slow
SELECT id, subject FROM tickets WHERE assignee_id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);

-- name: any-array-unindexed
-- schema: logi
-- intent: slow
SELECT id FROM shipments WHERE customer_id = ANY (ARRAY(SELECT generate_series(1, 2000)));

-- name: in-list-of-countries
-- schema: logi
-- intent: slow
SELECT id, tracking_no FROM shipments WHERE dest_country IN ('BG', 'HR', 'SI', 'SK', 'GR', 'RO');

-- name: in-list-indexed-pk
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE id IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

-- name: any-array-indexed
-- schema: logi
-- intent: fine
SELECT id FROM shipments WHERE id = ANY (ARRAY(SELECT generate_series(1, 2000)));

-- name: in-list-small-table
-- schema: logi
-- intent: fine
SELECT id FROM carriers WHERE country IN ('DE', 'FR', 'PL', 'IT', 'ES');
