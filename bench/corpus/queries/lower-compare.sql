-- family: lower-compare
-- source: Use The Index, Luke, "Case-Insensitive Search Using UPPER or LOWER"
-- source: PostgreSQL docs 11.7 (an index on lower(col)); citext

-- name: lower-email
-- schema: saas
-- intent: slow
SELECT id FROM users WHERE lower(email) = 'user4242@mail71.example.com';

-- name: ilike-email
-- schema: saas
-- intent: slow
SELECT id FROM users WHERE email ILIKE 'user4242@mail71.example.com';

-- name: upper-tracking
-- schema: logi
-- intent: slow
SELECT id FROM shipments WHERE upper(tracking_no) = 'TRK0000424242';

-- name: lower-location
-- schema: logi
-- intent: slow
SELECT count(*) FROM tracking_events WHERE lower(location) = 'hub 42';

-- name: exact-email
-- schema: saas
-- intent: fine
SELECT id FROM users WHERE email = 'User4242@Mail71.example.COM';

-- name: lower-small-table
-- schema: logi
-- intent: fine
SELECT id FROM warehouses WHERE lower(code) = 'wh007';

-- name: lower-medium-table
-- schema: logi
-- intent: fine
SELECT id FROM customers WHERE lower(code) = 'c0004242';

-- name: lower-after-indexed-filter
-- schema: saas
-- intent: fine
SELECT id FROM users WHERE tenant_id = 19000 AND lower(display_name) LIKE 'user number 1%';

-- name: lower-prefix-medium
-- schema: saas
-- intent: fine
SELECT id FROM kb_articles WHERE lower(title) LIKE 'how to abc%';
