-- family: unbounded-range-read
-- source: https://use-the-index-luke.com/sql/partial-results/fetch-next-page
-- source: https://use-the-index-luke.com/sql/clustering/index-only-scan-covering-index
-- A report or export that fetches a year of rows (SELECT * of hundreds of thousands of wide
-- rows, sorted by something the index does not provide) to a page or an API call. The same read
-- bounded to a day, or limited, is cheap.

-- name: export-2025
-- schema: ledger
-- intent: slow
SELECT * FROM transactions WHERE booked_at >= timestamptz '2025-01-01 00:00+00';

-- name: half-year-sorted-by-amount
-- schema: ledger
-- intent: slow
SELECT id, account_id, amount_cents, description FROM transactions
WHERE booked_at >= timestamptz '2025-07-01 00:00+00'
ORDER BY amount_cents;

-- name: all-open-accounts
-- schema: ledger
-- intent: slow
SELECT * FROM accounts WHERE status = 'open';

-- name: audit-export-month
-- schema: ledger
-- intent: slow
SELECT * FROM audit_log WHERE id > 4000000 ORDER BY at;

-- name: one-day-export
-- schema: ledger
-- intent: fine
SELECT * FROM transactions
WHERE booked_at >= timestamptz '2025-12-29 00:00+00' AND booked_at < timestamptz '2025-12-30 00:00+00';

-- name: first-page-of-2025
-- schema: ledger
-- intent: fine
SELECT * FROM transactions WHERE booked_at >= timestamptz '2025-01-01 00:00+00'
ORDER BY booked_at LIMIT 100;

-- name: all-branches
-- schema: ledger
-- intent: fine
SELECT * FROM branches;

-- name: one-week-export
-- schema: ledger
-- intent: fine
SELECT id, account_id, amount_cents, booked_at FROM transactions
WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00';
