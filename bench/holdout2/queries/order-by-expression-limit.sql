-- family: order-by-expression-limit
-- source: https://use-the-index-luke.com/sql/sorting-grouping/order-by-asc-desc-nulls-last
-- source: https://use-the-index-luke.com/sql/partial-results/top-n-queries
-- source: https://www.postgresql.org/docs/current/indexes-expressional.html
-- An index delivers ORDER BY … LIMIT only for the exact column order it stores; an expression
-- (abs(), coalesce(), lower(), date_trunc(), arithmetic) in ORDER BY makes the database compute
-- it for every row and top-N sort the whole table. Fine when the sort key is the indexed
-- column itself, or a WHERE narrows the rows first.

-- name: largest-absolute-amounts
-- schema: ledger
-- intent: slow
SELECT id, account_id, amount_cents FROM transactions ORDER BY abs(amount_cents) DESC LIMIT 10;

-- name: last-activity-coalesce
-- schema: ledger
-- intent: slow
SELECT id, iban FROM accounts ORDER BY coalesce(closed_at, opened_at) DESC LIMIT 20;

-- name: customers-by-lower-email
-- schema: ledger
-- intent: slow
SELECT id, email FROM customers ORDER BY lower(email) LIMIT 50;

-- name: newest-by-day-then-amount
-- schema: ledger
-- intent: slow
SELECT id, booked_at, amount_cents FROM transactions
ORDER BY date_trunc('day', booked_at) DESC, amount_cents LIMIT 20;

-- name: newest-plus-offset
-- schema: ledger
-- intent: slow
SELECT id, booked_at FROM transactions ORDER BY booked_at + interval '2 hours' DESC LIMIT 20;

-- name: newest-by-column
-- schema: ledger
-- intent: fine
SELECT id, booked_at, amount_cents FROM transactions ORDER BY booked_at DESC LIMIT 20;

-- name: largest-abs-of-one-account
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions WHERE account_id = 17 ORDER BY abs(amount_cents) DESC LIMIT 10;

-- name: merchants-by-lower-name
-- schema: ledger
-- intent: fine
SELECT id, name FROM merchants WHERE category = 'cinema' ORDER BY lower(name) LIMIT 20;

-- name: customers-by-email
-- schema: ledger
-- intent: fine
SELECT id, email FROM customers ORDER BY email LIMIT 50;

-- name: largest-abs-one-week
-- schema: ledger
-- intent: fine
SELECT id, account_id, amount_cents FROM transactions
WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00'
ORDER BY abs(amount_cents) DESC LIMIT 10;
