-- family: not-in-nullable
-- source: https://wiki.postgresql.org/wiki/Don%27t_Do_This#Don.27t_use_NOT_IN
-- source: https://www.postgresql.org/docs/current/functions-subquery.html#FUNCTIONS-SUBQUERY-NOTIN
-- NOT IN (subquery) over a nullable column cannot become an anti-join; when the subquery's
-- result does not fit in work_mem as a hash, it is rescanned for every outer row. NOT EXISTS
-- with an indexed correlation, or NOT IN over a short list or a small subquery, is fine.

-- name: merchants-never-paid
-- schema: ledger
-- intent: slow
SELECT m.id, m.name FROM merchants m
WHERE m.id NOT IN (SELECT merchant_id FROM transactions);

-- name: customers-who-never-referred
-- schema: ledger
-- intent: slow
SELECT count(*) FROM customers c
WHERE c.segment = 'business' AND c.id NOT IN (SELECT referred_by FROM customers);

-- name: accounts-idle-in-2025
-- schema: ledger
-- intent: slow
SELECT a.id FROM accounts a
WHERE a.id <= 2000
  AND a.id NOT IN (SELECT account_id FROM transactions
                   WHERE booked_at >= timestamptz '2025-06-01 00:00+00');

-- name: merchants-never-paid-not-exists
-- schema: ledger
-- intent: slow
SELECT m.id, m.name FROM merchants m
WHERE NOT EXISTS (SELECT 1 FROM transactions t WHERE t.merchant_id = m.id);

-- name: accounts-without-transactions-not-exists
-- schema: ledger
-- intent: fine
SELECT a.id FROM accounts a
WHERE a.customer_id BETWEEN 1000 AND 1300
  AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.account_id = a.id);

-- name: branches-not-used-by-customer
-- schema: ledger
-- intent: fine
SELECT b.id, b.city FROM branches b
WHERE b.id NOT IN (SELECT branch_id FROM accounts WHERE customer_id = 42 AND branch_id IS NOT NULL);

-- name: kinds-not-in-list
-- schema: ledger
-- intent: fine
SELECT id, kind, amount_cents FROM transactions
WHERE account_id = 17 AND kind NOT IN ('card', 'transfer', 'atm');

-- name: currencies-without-rate-today
-- schema: ledger
-- intent: fine
SELECT DISTINCT currency FROM exchange_rates
WHERE currency NOT IN (SELECT currency FROM exchange_rates WHERE day = date '2025-12-31');
