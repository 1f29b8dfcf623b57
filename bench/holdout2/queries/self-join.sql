-- family: self-join
-- source: https://www.sqlservercentral.com/articles/hidden-rbar-triangular-joins
-- source: https://www.devx.com/database-development-zone/working-with-triangular-joins/
-- Self-joins with an inequality (running totals, "previous row", near-duplicates) produce
-- O(n²) row pairs per group: harmless over a few rows, ruinous over busy accounts or a whole
-- table. Fine when each side is restricted to a few indexed rows.

-- name: triangular-running-total-business
-- schema: ledger
-- intent: slow
SELECT t1.id, t1.account_id, sum(t2.amount_cents) AS running
FROM transactions t1
JOIN transactions t2 ON t2.account_id = t1.account_id AND t2.booked_at <= t1.booked_at
WHERE t1.account_id BETWEEN 1 AND 40
GROUP BY t1.id, t1.account_id;

-- name: duplicate-transfers
-- schema: ledger
-- intent: slow
SELECT t1.id, t2.id
FROM transactions t1
JOIN transactions t2 ON t2.counterparty_iban = t1.counterparty_iban
                    AND t2.amount_cents = t1.amount_cents AND t2.id > t1.id
WHERE t1.kind = 'transfer';

-- name: top-referrers
-- schema: ledger
-- intent: slow
SELECT r.id, r.full_name, count(*) AS referred
FROM customers c JOIN customers r ON r.id = c.referred_by
GROUP BY r.id, r.full_name
ORDER BY referred DESC
LIMIT 10;

-- name: same-day-pairs-one-account
-- schema: ledger
-- intent: fine
SELECT t1.id, t2.id
FROM transactions t1
JOIN transactions t2 ON t2.account_id = t1.account_id AND t2.booked_at > t1.booked_at
                    AND t2.booked_at < t1.booked_at + interval '1 day'
WHERE t1.account_id = 17 AND t1.booked_at >= timestamptz '2025-07-01 00:00+00';

-- name: triangular-running-total-ordinary
-- schema: ledger
-- intent: fine
SELECT t1.id, sum(t2.amount_cents) AS running
FROM transactions t1
JOIN transactions t2 ON t2.account_id = t1.account_id AND t2.booked_at <= t1.booked_at
WHERE t1.account_id = 4711
GROUP BY t1.id;

-- name: referrer-of-listed-customers
-- schema: ledger
-- intent: fine
SELECT c.id, r.id AS referrer, r.full_name
FROM customers c JOIN customers r ON r.id = c.referred_by
WHERE c.id IN (1999000, 1999001, 1999002, 1999003, 1999004, 1999005);
