-- family: leading-wildcard-like
-- source: Use The Index, Luke, "Indexing LIKE Filters"
-- source: PostgreSQL docs 11.2 (LIKE needs an anchored pattern for a B-tree)

-- name: subject-contains
-- schema: saas
-- intent: slow
SELECT id, subject FROM tickets WHERE subject LIKE '%order 4242 %';

-- name: email-suffix
-- schema: saas
-- intent: slow
SELECT id, email FROM users WHERE email LIKE '%@Mail13.example.COM' LIMIT 100000;

-- name: tracking-no-suffix
-- schema: logi
-- intent: slow
SELECT id, event_type FROM tracking_events WHERE location LIKE '%b 299';

-- name: note-ilike
-- schema: saas
-- intent: slow
SELECT id, ticket_id FROM ticket_events WHERE note ILIKE '%abc123%';

-- name: tracking-prefix-indexed
-- schema: logi
-- intent: fine
SELECT id, status FROM shipments WHERE tracking_no LIKE 'TRK000042424%';

-- name: contains-on-small-table
-- schema: logi
-- intent: fine
SELECT id FROM carriers WHERE name LIKE '%ier 1%';

-- name: contains-on-medium-table
-- schema: logi
-- intent: fine
SELECT id, sku FROM products WHERE name LIKE '%uct 1999%';

-- name: contains-within-one-tenant
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets
WHERE tenant_id = 5000 AND subject LIKE '%order 42%';

-- name: contains-after-index-range
-- schema: saas
-- intent: fine
SELECT id FROM tickets WHERE created_at >= timestamptz '2026-10-19' AND subject LIKE '%4242%';
