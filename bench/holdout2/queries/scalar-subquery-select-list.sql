-- family: scalar-subquery-select-list
-- source: https://www.cybertec-postgresql.com/en/subqueries-and-performance-in-postgresql/
-- source: https://use-the-index-luke.com/sql/join/nested-loops-join-n1-problem
-- A correlated scalar subquery in the SELECT list is a SubPlan executed once per output row;
-- per row it must be an index lookup, otherwise rows × table size. Fine when the correlation
-- column is indexed or the outer rows are few and the inner table small.

-- name: last-payment-per-portuguese-merchant
-- schema: ledger
-- intent: slow
SELECT m.id, m.name,
       (SELECT max(t.booked_at) FROM transactions t WHERE t.merchant_id = m.id) AS last_paid
FROM merchants m
WHERE m.country = 'PT';

-- name: audit-count-per-customer
-- schema: ledger
-- intent: slow
SELECT c.id, c.full_name,
       (SELECT count(*) FROM audit_log l WHERE l.actor_id = c.id) AS events
FROM customers c
WHERE c.segment = 'business'
ORDER BY c.id
LIMIT 20;

-- name: accounts-per-branch-subquery
-- schema: ledger
-- intent: slow
SELECT b.id, b.city,
       (SELECT count(*) FROM accounts a WHERE a.branch_id = b.id) AS accounts
FROM branches b;

-- name: referrals-per-customer
-- schema: ledger
-- intent: slow
SELECT c.id, (SELECT count(*) FROM customers r WHERE r.referred_by = c.id) AS referrals
FROM customers c
WHERE c.id <= 30;

-- name: last-payment-per-account-of-customer
-- schema: ledger
-- intent: fine
SELECT a.id, a.iban,
       (SELECT max(t.booked_at) FROM transactions t WHERE t.account_id = a.id) AS last_paid
FROM accounts a
WHERE a.customer_id = 1234;

-- name: accounts-per-customer-range
-- schema: ledger
-- intent: fine
SELECT c.id, (SELECT count(*) FROM accounts a WHERE a.customer_id = c.id) AS accounts
FROM customers c
WHERE c.id BETWEEN 100 AND 400;

-- name: merchant-name-per-payment
-- schema: ledger
-- intent: fine
SELECT t.id, t.amount_cents,
       (SELECT m.name FROM merchants m WHERE m.id = t.merchant_id) AS merchant
FROM transactions t
WHERE t.account_id = 17;

-- name: rate-per-payment
-- schema: ledger
-- intent: fine
SELECT t.id, t.amount_cents,
       (SELECT r.rate FROM exchange_rates r
        WHERE r.currency = t.currency AND r.day = t.value_date) AS rate
FROM transactions t
WHERE t.account_id = 42 AND t.currency <> 'EUR';
