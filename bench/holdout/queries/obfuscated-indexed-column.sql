-- family: obfuscated-indexed-column
-- source: Use The Index, Luke! "Obfuscated Conditions: Dates" and "Math" (functions or arithmetic on an indexed column)
-- source: Markus Winand, SQL Performance Explained ch. 2 "Functions"

-- name: date-trunc-day-count
-- schema: bazaar
-- intent: slow
SELECT count(*) FROM listings WHERE date_trunc('day', created_at) = timestamptz '2025-03-14';

-- name: cast-to-date
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE created_at::date = date '2025-03-14';

-- name: extract-year-month
-- schema: bazaar
-- intent: slow
SELECT id, price_cents FROM listings
WHERE extract(year FROM created_at) = 2024 AND extract(month FROM created_at) = 2 AND price_cents > 400000;

-- name: interval-added-to-column
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE created_at + interval '30 days' > timestamptz '2025-12-31' AND is_featured;

-- name: lower-handle
-- schema: bazaar
-- intent: slow
SELECT l.id, l.title FROM listings l JOIN members m ON m.id = l.seller_id WHERE lower(m.handle) = 'omar_4711';

-- name: day-range
-- schema: bazaar
-- intent: fine
SELECT count(*) FROM listings WHERE created_at >= '2025-03-14' AND created_at < '2025-03-15';

-- name: day-range-rows
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE created_at >= '2025-03-14' AND created_at < '2025-03-15';

-- name: handle-exact
-- schema: bazaar
-- intent: fine
SELECT l.id, l.title FROM listings l JOIN members m ON m.id = l.seller_id WHERE m.handle = 'omar_4711';

-- name: at-time-zone-on-column
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE created_at AT TIME ZONE 'Europe/Berlin' >= '2025-12-31 00:00'
  AND created_at AT TIME ZONE 'Europe/Berlin' < '2025-12-31 02:00';
