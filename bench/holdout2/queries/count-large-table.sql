-- family: count-large-table
-- source: https://wiki.postgresql.org/wiki/Slow_Counting
-- source: https://www.citusdata.com/blog/2016/10/12/count-performance/
-- An exact count(*) reads every row (or every index entry) of the table; dashboards that show
-- "N transactions" recompute it per request. Fine when an index narrows it, the table is small,
-- or the estimate from the catalog is enough.

-- name: all-transactions
-- schema: ledger
-- intent: slow
SELECT count(*) FROM transactions;

-- name: posted-transactions
-- schema: ledger
-- intent: slow
SELECT count(*) FROM transactions WHERE status = 'posted';

-- name: logins-in-audit-log
-- schema: ledger
-- intent: slow
SELECT count(*) FROM audit_log WHERE action = 'login';

-- name: open-accounts-by-kind
-- schema: ledger
-- intent: slow
SELECT kind, count(*) FROM accounts WHERE status = 'open' GROUP BY kind;

-- name: one-account-count
-- schema: ledger
-- intent: fine
SELECT count(*) FROM transactions WHERE account_id = 4711;

-- name: last-day-count
-- schema: ledger
-- intent: fine
SELECT count(*) FROM transactions WHERE booked_at >= timestamptz '2025-12-30 00:00+00';

-- name: merchants-count
-- schema: ledger
-- intent: fine
SELECT count(*) FROM merchants WHERE NOT is_blocked;

-- name: catalog-estimate
-- schema: ledger
-- intent: fine
SELECT reltuples::bigint AS estimate FROM pg_class WHERE relname = 'transactions';

-- name: one-week-count
-- schema: ledger
-- intent: fine
SELECT count(*) FROM transactions
WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00';
