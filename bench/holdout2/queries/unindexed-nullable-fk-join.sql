-- family: unindexed-nullable-fk-join
-- source: https://conorliv.com/postgresql-optimize-delete.html
-- source: https://use-the-index-luke.com/sql/join/hash-join-partial-objects
-- Joining from a selective parent row to its children through a foreign key column that has no
-- index (here nullable ones: a payment's merchant, an account's branch, an event's actor) reads
-- the whole child table. Fine when the join is driven through an indexed key, or from the child
-- side restricted by an index.

-- name: payments-at-named-merchant
-- schema: ledger
-- intent: slow
SELECT t.id, t.amount_cents, t.booked_at
FROM merchants m JOIN transactions t ON t.merchant_id = m.id
WHERE m.name = 'Shell #4916';

-- name: balances-of-swiss-branches
-- schema: ledger
-- intent: slow
SELECT b.city, count(*) AS accounts, sum(a.balance_cents) AS balance
FROM branches b JOIN accounts a ON a.branch_id = b.id
WHERE b.country = 'CH'
GROUP BY b.city;

-- name: events-of-customer-by-email
-- schema: ledger
-- intent: slow
SELECT l.at, l.action, l.entity
FROM customers c JOIN audit_log l ON l.actor_id = c.id
WHERE c.email = 'Anna.meier20@Bank.example';

-- name: payments-of-blocked-merchants-recent
-- schema: ledger
-- intent: slow
SELECT t.id, m.name
FROM merchants m JOIN transactions t ON t.merchant_id = m.id
WHERE m.is_blocked AND t.status = 'posted';

-- name: accounts-of-customer-by-email
-- schema: ledger
-- intent: fine
SELECT a.id, a.iban FROM customers c JOIN accounts a ON a.customer_id = c.id
WHERE c.email = 'Anna.meier20@Bank.example';

-- name: merchants-of-one-account
-- schema: ledger
-- intent: fine
SELECT t.id, m.name, t.amount_cents
FROM transactions t JOIN merchants m ON m.id = t.merchant_id
WHERE t.account_id = 17;

-- name: branch-of-customer-accounts
-- schema: ledger
-- intent: fine
SELECT a.id, b.city FROM accounts a LEFT JOIN branches b ON b.id = a.branch_id
WHERE a.customer_id = 42;

-- name: payments-with-merchant-last-hour
-- schema: ledger
-- intent: fine
SELECT t.id, m.name, t.amount_cents
FROM transactions t JOIN merchants m ON m.id = t.merchant_id
WHERE t.booked_at >= timestamptz '2025-12-30 23:00+00';
