-- family: non-sargable-date-arithmetic
-- source: Use The Index, Luke, "Obfuscated Conditions: Dates" and "Math"

-- name: created-plus-interval
-- schema: saas
-- intent: slow
SELECT id FROM tickets WHERE created_at + interval '30 days' > timestamptz '2026-10-01';

-- name: shipped-extract-year
-- schema: logi
-- intent: slow
SELECT count(*) FROM shipments WHERE extract(year FROM shipped_at) = 2025
  AND extract(month FROM shipped_at) = 3;

-- name: age-in-days
-- schema: saas
-- intent: slow
SELECT id FROM tickets WHERE now() - created_at < interval '3 days';

-- name: id-arithmetic
-- schema: logi
-- intent: slow
SELECT id, status FROM shipments WHERE id + 1 = 424243;

-- name: created-range-sargable
-- schema: saas
-- intent: fine
SELECT id FROM tickets WHERE created_at > timestamptz '2026-10-01' - interval '30 days'
  AND created_at < timestamptz '2026-09-02';

-- name: shipped-range-sargable
-- schema: logi
-- intent: fine
SELECT count(*) FROM shipments
WHERE shipped_at >= timestamptz '2025-03-01' AND shipped_at < timestamptz '2025-03-01 06:00';

-- name: id-constant-folded
-- schema: logi
-- intent: fine
SELECT id, status FROM shipments WHERE id = 424243 - 1;

-- name: date-arith-small-table
-- schema: saas
-- intent: fine
SELECT id FROM tenants WHERE created_at + interval '1 year' > timestamptz '2026-01-01';
