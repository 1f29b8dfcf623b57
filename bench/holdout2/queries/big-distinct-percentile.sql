-- family: big-distinct-percentile
-- source: https://www.citusdata.com/blog/2016/10/12/count-performance/
-- source: https://www.postgresql.org/docs/current/functions-aggregate.html#FUNCTIONS-ORDEREDSET-TABLE
-- count(DISTINCT …), percentile_cont / percentile_disc and mode() sort their whole input (no hash
-- path); over millions of rows that is a large sort for one number. Fine over one account, one
-- hour, or a small table.

-- name: distinct-accounts-paying
-- schema: ledger
-- intent: slow
SELECT count(DISTINCT account_id) FROM transactions WHERE kind = 'card';

-- name: median-card-payment
-- schema: ledger
-- intent: slow
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount_cents) FROM transactions WHERE kind = 'card';

-- name: distinct-customers-per-merchant-category
-- schema: ledger
-- intent: slow
SELECT m.category, count(DISTINCT t.account_id)
FROM transactions t JOIN merchants m ON m.id = t.merchant_id
GROUP BY m.category;

-- name: most-common-device
-- schema: ledger
-- intent: slow
SELECT mode() WITHIN GROUP (ORDER BY meta ->> 'device') FROM transactions
WHERE booked_at >= timestamptz '2025-01-01 00:00+00';

-- name: distinct-merchants-one-account
-- schema: ledger
-- intent: fine
SELECT count(DISTINCT merchant_id) FROM transactions WHERE account_id = 17;

-- name: median-one-hour
-- schema: ledger
-- intent: fine
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount_cents) FROM transactions
WHERE booked_at >= timestamptz '2025-12-01 12:00+00' AND booked_at < timestamptz '2025-12-01 13:00+00';

-- name: distinct-mcc
-- schema: ledger
-- intent: fine
SELECT count(DISTINCT mcc), percentile_disc(0.9) WITHIN GROUP (ORDER BY id) FROM merchants;

-- name: distinct-accounts-one-week
-- schema: ledger
-- intent: fine
SELECT count(DISTINCT account_id), percentile_cont(0.9) WITHIN GROUP (ORDER BY amount_cents)
FROM transactions
WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00';
