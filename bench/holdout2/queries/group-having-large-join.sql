-- family: group-having-large-join
-- source: https://use-the-index-luke.com/sql/sorting-grouping/indexed-group-by
-- source: https://www.postgresql.org/docs/current/queries-table-expressions.html#QUERIES-GROUP
-- HAVING filters groups only after the join and the aggregation have run over every input row:
-- "customers whose spending exceeds X" joins and groups millions of rows to return a few. Fine
-- when a WHERE on an indexed key limits the join input first.

-- name: big-spenders
-- schema: ledger
-- intent: slow
SELECT a.customer_id, sum(t.amount_cents) AS spent
FROM accounts a JOIN transactions t ON t.account_id = a.id
WHERE t.kind = 'card'
GROUP BY a.customer_id
HAVING sum(t.amount_cents) < -50000000;

-- name: merchants-with-many-refunds
-- schema: ledger
-- intent: slow
SELECT m.id, m.name, count(*) AS refunds
FROM merchants m JOIN transactions t ON t.merchant_id = m.id
WHERE t.kind = 'refund'
GROUP BY m.id, m.name
HAVING count(*) > 100;

-- name: branches-with-heavy-fees
-- schema: ledger
-- intent: slow
SELECT b.id, b.city, sum(t.amount_cents) AS fees
FROM branches b
JOIN accounts a ON a.branch_id = b.id
JOIN transactions t ON t.account_id = a.id
WHERE t.kind = 'fee'
GROUP BY b.id, b.city
HAVING sum(t.amount_cents) < -100000;

-- name: countries-with-many-closed-accounts
-- schema: ledger
-- intent: slow
SELECT c.country, count(*) AS closed
FROM customers c JOIN accounts a ON a.customer_id = c.id
WHERE a.status = 'closed'
GROUP BY c.country
HAVING count(*) > 1000;

-- name: one-customer-spending
-- schema: ledger
-- intent: fine
SELECT a.customer_id, sum(t.amount_cents) AS spent
FROM accounts a JOIN transactions t ON t.account_id = a.id
WHERE a.customer_id = 12
GROUP BY a.customer_id
HAVING sum(t.amount_cents) < 0;

-- name: business-accounts-busy
-- schema: ledger
-- intent: fine
SELECT t.account_id, count(*) AS n
FROM transactions t
WHERE t.account_id BETWEEN 1 AND 20
GROUP BY t.account_id
HAVING count(*) > 300;

-- name: merchants-busy-in-one-hour
-- schema: ledger
-- intent: fine
SELECT m.id, m.name, count(*) AS n
FROM transactions t JOIN merchants m ON m.id = t.merchant_id
WHERE t.booked_at >= timestamptz '2025-12-01 12:00+00' AND t.booked_at < timestamptz '2025-12-01 13:00+00'
GROUP BY m.id, m.name
HAVING count(*) > 1;

-- name: merchant-totals-two-days
-- schema: ledger
-- intent: fine
SELECT m.id, m.name, sum(t.amount_cents) AS total
FROM transactions t JOIN merchants m ON m.id = t.merchant_id
WHERE t.booked_at >= timestamptz '2025-09-01 00:00+00' AND t.booked_at < timestamptz '2025-09-03 00:00+00'
GROUP BY m.id, m.name
HAVING sum(t.amount_cents) < -200000;
