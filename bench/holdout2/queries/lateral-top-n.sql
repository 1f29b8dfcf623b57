-- family: lateral-top-n
-- source: https://www.postgresql.org/docs/current/queries-table-expressions.html#QUERIES-LATERAL
-- source: https://use-the-index-luke.com/sql/partial-results/top-n-queries
-- A LATERAL subquery with ORDER BY … LIMIT runs once per outer row; it is cheap only when an
-- index delivers each outer row's top rows directly. On an unindexed correlation column each
-- iteration scans (most of) a large table.

-- name: last-payments-per-fuel-merchant
-- schema: ledger
-- intent: slow
SELECT m.id, m.name, t.booked_at, t.amount_cents
FROM merchants m
CROSS JOIN LATERAL (SELECT booked_at, amount_cents FROM transactions t
                    WHERE t.merchant_id = m.id ORDER BY booked_at DESC LIMIT 3) t
WHERE m.category = 'fuel' AND m.country = 'PT';

-- name: last-events-per-business-customer
-- schema: ledger
-- intent: slow
SELECT c.id, l.at, l.action
FROM customers c
CROSS JOIN LATERAL (SELECT at, action FROM audit_log l
                    WHERE l.actor_id = c.id ORDER BY at DESC LIMIT 5) l
WHERE c.segment = 'business' AND c.country = 'NZ';

-- name: biggest-debit-per-account-of-branch
-- schema: ledger
-- intent: slow
SELECT a.id, t.amount_cents
FROM accounts a
CROSS JOIN LATERAL (SELECT amount_cents FROM transactions t
                    WHERE t.account_id = a.id ORDER BY amount_cents LIMIT 1) t
WHERE a.branch_id = 3;

-- name: last-payments-per-account-of-customer
-- schema: ledger
-- intent: fine
SELECT a.id, t.booked_at, t.amount_cents
FROM accounts a
CROSS JOIN LATERAL (SELECT booked_at, amount_cents FROM transactions t
                    WHERE t.account_id = a.id ORDER BY booked_at DESC LIMIT 5) t
WHERE a.customer_id = 12;

-- name: last-payments-of-top-merchant
-- schema: ledger
-- intent: fine
SELECT m.id, m.name, t.booked_at, t.amount_cents
FROM merchants m
CROSS JOIN LATERAL (SELECT booked_at, amount_cents FROM transactions t
                    WHERE t.merchant_id = m.id ORDER BY booked_at DESC LIMIT 3) t
WHERE m.id = 1;

-- name: last-payments-per-account-range
-- schema: ledger
-- intent: fine
SELECT a.id, t.booked_at, t.amount_cents
FROM accounts a
CROSS JOIN LATERAL (SELECT booked_at, amount_cents FROM transactions t
                    WHERE t.account_id = a.id ORDER BY booked_at DESC LIMIT 3) t
WHERE a.id BETWEEN 200000 AND 200300;
