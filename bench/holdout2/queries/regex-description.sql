-- family: regex-description
-- source: https://www.postgresql.org/docs/current/pgtrgm.html#PGTRGM-INDEX
-- source: https://use-the-index-luke.com/sql/where-clause/searching-for-ranges/like-performance-tuning
-- Regular expressions and infix patterns (~*, ILIKE '%…%', similar to) cannot use a B-tree; each
-- row's text is scanned. Fine when an indexed predicate narrows the rows first, or the pattern
-- is a left-anchored prefix on a B-tree in the C collation.

-- name: regex-crypto-or-refund
-- schema: ledger
-- intent: slow
SELECT id, description FROM transactions WHERE description ~* '(crypto|chargeback)';

-- name: ilike-salary
-- schema: ledger
-- intent: slow
SELECT count(*) FROM transactions WHERE description ILIKE '%salary%';

-- name: iban-suffix
-- schema: ledger
-- intent: slow
SELECT id, customer_id FROM accounts WHERE iban ILIKE '%4711';

-- name: address-regex
-- schema: ledger
-- intent: slow
SELECT id FROM customers WHERE address ~ '^1[0-9] Via Roma';

-- name: regex-on-one-account
-- schema: ledger
-- intent: fine
SELECT id, description FROM transactions WHERE account_id = 17 AND description ~* '(rent|salary)';

-- name: iban-prefix
-- schema: ledger
-- intent: fine
SELECT id, customer_id FROM accounts WHERE iban LIKE 'CH55000000000000047%';

-- name: merchant-name-ilike
-- schema: ledger
-- intent: fine
SELECT id, name FROM merchants WHERE name ILIKE '%starbucks #4%';

-- name: regex-three-days
-- schema: ledger
-- intent: fine
SELECT id, description FROM transactions
WHERE booked_at >= timestamptz '2025-11-01 00:00+00' AND booked_at < timestamptz '2025-11-04 00:00+00'
  AND description ~* '(crypto|chargeback)';
