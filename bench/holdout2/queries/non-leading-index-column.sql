-- family: non-leading-index-column
-- source: https://use-the-index-luke.com/sql/where-clause/the-equals-operator/concatenated-keys
-- source: https://www.postgresql.org/docs/current/indexes-multicolumn.html
-- A B-tree on (a, b, c) serves conditions on its leading column(s); a condition on b or c alone
-- (or a range on a non-leading column) cannot descend the tree and reads the whole index or
-- table. Fine when the leading column is constrained too.

-- name: audit-by-entity-id-only
-- schema: ledger
-- intent: slow
SELECT id, entity, action, at FROM audit_log WHERE entity_id = 424242;

-- name: audit-one-day
-- schema: ledger
-- intent: slow
SELECT action, count(*) FROM audit_log
WHERE at >= timestamptz '2025-06-01 00:00+00' AND at < timestamptz '2025-06-02 00:00+00'
GROUP BY action;

-- name: entity-id-range-any-entity
-- schema: ledger
-- intent: slow
SELECT entity, entity_id, action, at FROM audit_log
WHERE entity_id BETWEEN 5000 AND 5100 AND at >= timestamptz '2025-01-01 00:00+00';

-- name: audit-by-entity-and-id
-- schema: ledger
-- intent: fine
SELECT id, action, at FROM audit_log WHERE entity = 'account' AND entity_id = 424242;

-- name: audit-entity-id-time-range
-- schema: ledger
-- intent: fine
SELECT id, action, at FROM audit_log
WHERE entity = 'customer' AND entity_id = 1000 AND at >= timestamptz '2025-01-01 00:00+00';

-- name: customers-of-country-in-week
-- schema: ledger
-- intent: fine
SELECT id, full_name FROM customers
WHERE country = 'IS' AND created_at >= timestamptz '2024-03-04 00:00+00'
  AND created_at < timestamptz '2024-03-11 00:00+00';
