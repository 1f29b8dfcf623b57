-- family: limit-filter-far-end
-- source: https://thebuild.com/blog/2014/11/19/when-limit-attacks
-- source: https://pganalyze.com/blog/5mins-postgres-planner-order-by-limit
-- ORDER BY indexed_col LIMIT n with a filter on another column: the planner walks the index
-- expecting matches to be spread evenly, but when they all sit at the far end of that order
-- (values correlated with time) it reads almost the whole table. The same query walking from
-- the end where the matches are, or with a common value, stops after a few rows.

-- name: oldest-crypto-payments
-- schema: ledger
-- intent: slow
SELECT id, account_id, booked_at FROM transactions
WHERE kind = 'crypto' ORDER BY booked_at LIMIT 10;

-- name: oldest-pending-kyc
-- schema: ledger
-- intent: slow
SELECT id, full_name, created_at FROM customers
WHERE kyc_status = 'pending' ORDER BY created_at LIMIT 10;

-- name: first-pending-transactions
-- schema: ledger
-- intent: slow
SELECT id, account_id, booked_at FROM transactions
WHERE status = 'pending' ORDER BY booked_at LIMIT 20;

-- name: newest-crypto-payments
-- schema: ledger
-- intent: fine
SELECT id, account_id, booked_at FROM transactions
WHERE kind = 'crypto' ORDER BY booked_at DESC LIMIT 10;

-- name: newest-pending-kyc
-- schema: ledger
-- intent: fine
SELECT id, full_name, created_at FROM customers
WHERE kyc_status = 'pending' ORDER BY created_at DESC LIMIT 10;

-- name: oldest-card-payments
-- schema: ledger
-- intent: fine
SELECT id, account_id, booked_at FROM transactions
WHERE kind = 'card' ORDER BY booked_at LIMIT 10;
