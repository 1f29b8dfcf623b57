-- family: distinct-on-latest
-- source: https://www.postgresql.org/docs/current/sql-select.html#SQL-DISTINCT
-- source: https://stackoverflow.com/questions/3800551/select-first-row-in-each-group-by-group
-- "Latest row per group" with DISTINCT ON needs all rows ordered by the group key: over a whole
-- large table it sorts (or walks an index over) millions of rows. Fine when the groups asked for
-- are few and indexed, or the table is small.

-- name: latest-per-account
-- schema: ledger
-- intent: slow
SELECT DISTINCT ON (account_id) account_id, booked_at, amount_cents
FROM transactions
ORDER BY account_id, booked_at DESC;

-- name: latest-per-merchant
-- schema: ledger
-- intent: slow
SELECT DISTINCT ON (merchant_id) merchant_id, id, booked_at, amount_cents
FROM transactions
WHERE merchant_id IS NOT NULL
ORDER BY merchant_id, booked_at DESC;

-- name: last-action-per-actor
-- schema: ledger
-- intent: slow
SELECT DISTINCT ON (actor_id) actor_id, at, action
FROM audit_log
WHERE actor_id IS NOT NULL
ORDER BY actor_id, at DESC;

-- name: latest-for-five-accounts
-- schema: ledger
-- intent: fine
SELECT DISTINCT ON (account_id) account_id, booked_at, amount_cents
FROM transactions
WHERE account_id IN (12, 4711, 90210, 123456, 777777)
ORDER BY account_id, booked_at DESC;

-- name: latest-rate-per-currency
-- schema: ledger
-- intent: fine
SELECT DISTINCT ON (currency) currency, day, rate
FROM exchange_rates
ORDER BY currency, day DESC;

-- name: latest-per-account-last-hour
-- schema: ledger
-- intent: fine
SELECT DISTINCT ON (account_id) account_id, booked_at, amount_cents
FROM transactions
WHERE booked_at >= timestamptz '2025-12-30 23:00+00'
ORDER BY account_id, booked_at DESC;

-- name: latest-per-account-one-week
-- schema: ledger
-- intent: fine
SELECT DISTINCT ON (account_id) account_id, booked_at, amount_cents
FROM transactions
WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00'
ORDER BY account_id, booked_at DESC;
