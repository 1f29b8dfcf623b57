-- family: dml-as-select
-- source: https://www.postgresql.org/docs/current/sql-update.html
-- source: https://www.postgresql.org/docs/current/sql-delete.html
-- source: https://dba.stackexchange.com/questions/37034/very-slow-delete-in-postgresql-workaround
-- The SELECT half of UPDATE … FROM (recompute balances from the ledger) and of DELETE … WHERE
-- x IN (subquery) (purge rows of blocked merchants or closed customers), as a reviewer runs it
-- before the write: slow when the join or subquery reaches an unindexed column of a big table or
-- aggregates all of it; fine when the target rows are found by an index.

-- name: recompute-all-balances
-- schema: ledger
-- intent: slow
SELECT a.id, s.total
FROM accounts a
JOIN (SELECT account_id, sum(amount_cents) AS total FROM transactions
      WHERE status = 'posted' GROUP BY account_id) s ON s.account_id = a.id
WHERE a.balance_cents <> s.total;

-- name: rows-of-blocked-merchants
-- schema: ledger
-- intent: slow
SELECT t.id FROM transactions t
WHERE t.merchant_id IN (SELECT id FROM merchants WHERE is_blocked);

-- name: audit-of-long-closed-customers
-- schema: ledger
-- intent: slow
SELECT l.id FROM audit_log l
WHERE l.actor_id IN (SELECT id FROM customers WHERE closed_at < timestamptz '2015-01-01 00:00+00');

-- name: accounts-of-branch-to-move
-- schema: ledger
-- intent: slow
SELECT a.id, a.branch_id FROM accounts a
JOIN branches b ON b.id = a.branch_id
WHERE b.city = 'Basel 2';

-- name: rows-of-one-customer
-- schema: ledger
-- intent: fine
SELECT t.id FROM transactions t
WHERE t.account_id IN (SELECT id FROM accounts WHERE customer_id = 777);

-- name: recompute-balances-of-customer
-- schema: ledger
-- intent: fine
SELECT a.id, s.total
FROM accounts a
JOIN LATERAL (SELECT sum(amount_cents) AS total FROM transactions t
              WHERE t.account_id = a.id AND t.status = 'posted') s ON true
WHERE a.customer_id BETWEEN 50000 AND 50020;

-- name: pending-of-last-hour
-- schema: ledger
-- intent: fine
SELECT t.id, a.iban FROM transactions t JOIN accounts a ON a.id = t.account_id
WHERE t.booked_at >= timestamptz '2025-12-30 23:00+00' AND t.status = 'pending';
