-- family: or-conditions
-- source: https://www.cybertec-postgresql.com/en/avoid-or-for-better-performance/
-- source: https://use-the-index-luke.com/sql/where-clause/obfuscation/smart-logic
-- An OR can use indexes only when every branch has one (a BitmapOr); one unindexed branch, an
-- OR across two joined tables, or the "optional filter" idiom (:p IS NULL OR col = :p) turns the
-- query into a full scan. Fine when every branch is indexed.

-- name: account-or-merchant
-- schema: ledger
-- intent: slow
SELECT id, booked_at FROM transactions WHERE account_id = 4711 OR merchant_id = 31337;

-- name: reference-or-counterparty
-- schema: ledger
-- intent: slow
SELECT id, booked_at FROM transactions
WHERE reference = '1000037037' OR counterparty_iban = 'DE00000000000000001234';

-- name: email-or-exists-iban
-- schema: ledger
-- intent: slow
SELECT c.id, c.full_name FROM customers c
WHERE c.email = 'Anna.meier20@Bank.example'
   OR EXISTS (SELECT 1 FROM accounts a WHERE a.customer_id = c.id AND a.iban = 'CH5500000000000004711');

-- name: or-across-join
-- schema: ledger
-- intent: slow
SELECT t.id, t.amount_cents FROM transactions t JOIN accounts a ON a.id = t.account_id
WHERE t.reference = '1000037037' OR a.iban = 'CH5500000000000004711';

-- name: optional-filter-folded
-- schema: ledger
-- intent: fine
SELECT id, booked_at FROM transactions
WHERE (NULL::bigint IS NULL OR account_id = NULL::bigint) AND (4711 IS NULL OR account_id = 4711)
  AND (NULL::text IS NULL OR kind = NULL::text) AND amount_cents < -5000000;

-- name: account-or-kind
-- schema: ledger
-- intent: slow
SELECT id, booked_at FROM transactions WHERE account_id = 4711 OR kind = 'crypto';

-- name: account-or-reference
-- schema: ledger
-- intent: fine
SELECT id, booked_at FROM transactions WHERE account_id = 4711 OR reference = '1000037037';

-- name: two-accounts-recent
-- schema: ledger
-- intent: fine
SELECT id, booked_at FROM transactions
WHERE (account_id = 17 OR account_id = 4711) AND booked_at >= timestamptz '2025-10-01 00:00+00';

-- name: ids-or
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions WHERE id = 5 OR id = 1234567 OR id = 3999999;

-- name: email-or-email
-- schema: ledger
-- intent: fine
SELECT id, full_name FROM customers
WHERE email = 'Anna.meier20@Bank.example' OR email = 'Luca.schmid41@Bank.example';
