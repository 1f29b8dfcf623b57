-- family: offset-pagination
-- source: https://use-the-index-luke.com/no-offset
-- source: https://use-the-index-luke.com/sql/partial-results/fetch-next-page
-- OFFSET n reads and discards n rows before returning a page: deep pages of a big table read
-- hundreds of thousands of rows. The keyset ("seek") form and the first pages are cheap.

-- name: deep-page-of-transactions
-- schema: ledger
-- intent: slow
SELECT id, booked_at, amount_cents FROM transactions ORDER BY booked_at DESC OFFSET 1500000 LIMIT 50;

-- name: deep-page-of-audit
-- schema: ledger
-- intent: slow
SELECT id, at, action FROM audit_log ORDER BY id OFFSET 2000000 LIMIT 25;

-- name: deep-page-of-customers-by-name
-- schema: ledger
-- intent: slow
SELECT id, full_name FROM customers ORDER BY full_name, id OFFSET 100000 LIMIT 20;

-- name: keyset-page-of-transactions
-- schema: ledger
-- intent: fine
SELECT id, booked_at, amount_cents FROM transactions
WHERE booked_at < timestamptz '2024-12-01 00:00+00'
ORDER BY booked_at DESC LIMIT 50;

-- name: second-page-of-audit
-- schema: ledger
-- intent: fine
SELECT id, at, action FROM audit_log ORDER BY id OFFSET 25 LIMIT 25;

-- name: page-of-one-account
-- schema: ledger
-- intent: fine
SELECT id, booked_at, amount_cents FROM transactions WHERE account_id = 17
ORDER BY booked_at DESC OFFSET 200 LIMIT 50;
