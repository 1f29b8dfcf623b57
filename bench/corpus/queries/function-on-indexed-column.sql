-- family: function-on-indexed-column
-- source: Use The Index, Luke, "Functions" (case-insensitive search, user-defined functions)
-- source: PostgreSQL wiki, "Don't Do This"; PostgreSQL docs 11.7 "Indexes on Expressions"

-- name: date-trunc-created
-- schema: saas
-- intent: slow
SELECT id, status FROM tickets WHERE date_trunc('day', created_at) = timestamptz '2024-03-05';

-- name: substr-tracking-no
-- schema: logi
-- intent: slow
SELECT id, status FROM shipments WHERE substr(tracking_no, 4) = '0000424242';

-- name: coalesce-external-ref
-- schema: saas
-- intent: slow
SELECT id FROM tickets WHERE coalesce(external_ref, '') = '1424242';

-- name: cast-created-date
-- schema: saas
-- intent: slow
SELECT count(*) FROM tickets WHERE created_at::date = date '2024-03-05';

-- name: range-created-sargable
-- schema: saas
-- intent: fine
SELECT id, status FROM tickets
WHERE created_at >= timestamptz '2024-03-05' AND created_at < timestamptz '2024-03-06';

-- name: tracking-no-plain
-- schema: logi
-- intent: fine
SELECT id, status FROM shipments WHERE tracking_no = 'TRK' || '0000424242';

-- name: function-on-small-table
-- schema: logi
-- intent: fine
SELECT id, name FROM carriers WHERE upper(country) = 'DE';

-- name: function-on-medium-table
-- schema: saas
-- intent: fine
SELECT id, name FROM tenants WHERE date_trunc('month', created_at) = timestamptz '2019-01-01';

-- name: function-after-index-range
-- schema: logi
-- intent: fine
SELECT id FROM shipments WHERE shipped_at >= timestamptz '2025-11-20' AND extract(hour FROM shipped_at) = 3;
