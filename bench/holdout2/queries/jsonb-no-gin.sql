-- family: jsonb-no-gin
-- source: https://www.postgresql.org/docs/current/datatype-json.html#JSON-INDEXING
-- source: https://dev.to/polliog/postgresql-jsonb-gin-indexes-why-your-queries-are-slow-and-how-to-fix-them-12a0
-- jsonb containment (@>) and key existence (?) can only use a GIN index; without one every row
-- of the table is detoasted and tested. Fine when another indexed predicate narrows the rows
-- first, or when a LIMIT over index order stops after a few matches of a common value.

-- name: atm-channel-count
-- schema: ledger
-- intent: slow
SELECT count(*) FROM transactions WHERE meta @> '{"channel": "atm"}';

-- name: flagged-for-review
-- schema: ledger
-- intent: slow
SELECT id, account_id, amount_cents FROM transactions WHERE meta -> 'flags' ? 'manual_review';

-- name: beta-customers
-- schema: ledger
-- intent: slow
SELECT id, email FROM customers WHERE prefs @> '{"beta": true}';

-- name: denied-audit-events
-- schema: ledger
-- intent: slow
SELECT id, at, actor_id FROM audit_log WHERE payload ->> 'reason' = 'denied' AND entity = 'card';

-- name: one-account-app-payments
-- schema: ledger
-- intent: fine
SELECT id, booked_at, amount_cents FROM transactions
WHERE account_id = 4711 AND meta @> '{"channel": "app"}';

-- name: newest-app-payments
-- schema: ledger
-- intent: fine
SELECT id, booked_at, amount_cents FROM transactions
WHERE meta @> '{"channel": "app"}'
ORDER BY booked_at DESC LIMIT 10;

-- name: audit-of-one-account-with-reason
-- schema: ledger
-- intent: fine
SELECT id, at, payload FROM audit_log
WHERE entity = 'account' AND entity_id = 31337 AND payload ? 'reason';

-- name: atm-channel-one-week
-- schema: ledger
-- intent: fine
SELECT count(*) FROM transactions
WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00' AND meta @> '{"channel": "atm"}';
