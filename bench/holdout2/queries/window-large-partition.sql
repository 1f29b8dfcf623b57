-- family: window-large-partition
-- source: https://www.postgresql.org/docs/current/tutorial-window.html
-- source: https://www.cybertec-postgresql.com/en/postgresql-speeding-up-analytics-and-windowing-functions/
-- A window function needs its whole input sorted by PARTITION BY / ORDER BY; over a large table
-- that is a sort of millions of rows even when the outer query keeps a handful. Fine when the
-- partition is one key served by an index, or the input is small.

-- name: latest-per-account-row-number
-- schema: ledger
-- intent: slow
SELECT account_id, id, amount_cents, booked_at
FROM (SELECT account_id, id, amount_cents, booked_at,
             row_number() OVER (PARTITION BY account_id ORDER BY booked_at DESC) AS rn
      FROM transactions t) s
WHERE rn = 1 AND amount_cents < -5000000;

-- name: top3-per-merchant
-- schema: ledger
-- intent: slow
SELECT merchant_id, id, amount_cents
FROM (SELECT merchant_id, id, amount_cents,
             rank() OVER (PARTITION BY merchant_id ORDER BY amount_cents) AS r
      FROM transactions WHERE merchant_id IS NOT NULL) s
WHERE r <= 3;

-- name: running-balance-2025-first-page
-- schema: ledger
-- intent: fine
SELECT id, account_id,
       sum(amount_cents) OVER (PARTITION BY account_id ORDER BY booked_at, id) AS running
FROM transactions
WHERE booked_at >= timestamptz '2025-01-01 00:00+00'
ORDER BY account_id, booked_at
LIMIT 100;

-- name: running-balance-2025-lowest
-- schema: ledger
-- intent: slow
SELECT id, account_id, running
FROM (SELECT id, account_id,
             sum(amount_cents) OVER (PARTITION BY account_id ORDER BY booked_at, id) AS running
      FROM transactions
      WHERE booked_at >= timestamptz '2025-01-01 00:00+00') s
ORDER BY running
LIMIT 100;

-- name: gap-between-logins
-- schema: ledger
-- intent: slow
SELECT actor_id, at, at - lag(at) OVER (PARTITION BY actor_id ORDER BY at) AS gap
FROM audit_log
WHERE action = 'login'
ORDER BY gap DESC NULLS LAST
LIMIT 20;

-- name: running-balance-one-account
-- schema: ledger
-- intent: fine
SELECT id, booked_at, amount_cents,
       sum(amount_cents) OVER (ORDER BY booked_at, id) AS running
FROM transactions
WHERE account_id = 4711
ORDER BY booked_at;

-- name: rank-within-one-hour
-- schema: ledger
-- intent: fine
SELECT id, account_id, amount_cents,
       rank() OVER (PARTITION BY kind ORDER BY amount_cents) AS r
FROM transactions
WHERE booked_at >= timestamptz '2025-06-01 10:00+00' AND booked_at < timestamptz '2025-06-01 11:00+00';

-- name: branch-ranking
-- schema: ledger
-- intent: fine
SELECT id, city, country, rank() OVER (PARTITION BY country ORDER BY opened_on) AS seniority
FROM branches;

-- name: business-account-row-number
-- schema: ledger
-- intent: fine
SELECT id, booked_at, amount_cents,
       row_number() OVER (ORDER BY booked_at DESC) AS n
FROM transactions
WHERE account_id = 17
ORDER BY booked_at DESC
LIMIT 25;

-- name: rank-within-one-week
-- schema: ledger
-- intent: fine
SELECT id, account_id, r FROM (
    SELECT id, account_id, rank() OVER (PARTITION BY kind ORDER BY amount_cents) AS r
    FROM transactions WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00') s
WHERE r <= 3;
