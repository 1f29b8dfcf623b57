-- family: type-mismatch-cast
-- source: https://use-the-index-luke.com/sql/where-clause/obfuscation/numeric-strings
-- source: https://www.postgresql.org/docs/current/typeconv-oper.html
-- A parameter of the wrong type makes PostgreSQL cast the column, not the constant: a varchar
-- of digits compared with a number or with a char(n) parameter, a bigint key compared with
-- numeric. The index on the column no longer matches and every row is cast. Fine with the
-- column's own type, or when the cast lands on the constant (a varchar parameter for a char
-- column).

-- name: reference-as-number
-- schema: ledger
-- intent: slow
SELECT id, amount_cents FROM transactions WHERE reference::bigint = 1000037037;

-- name: id-as-numeric
-- schema: ledger
-- intent: slow
SELECT id, amount_cents FROM transactions WHERE id = 1234567.0;

-- name: account-id-as-numeric
-- schema: ledger
-- intent: slow
SELECT id, booked_at FROM transactions WHERE account_id = 4711::numeric;

-- name: reference-as-char
-- schema: ledger
-- intent: slow
SELECT id, amount_cents FROM transactions WHERE reference = '1000037037'::char(10);

-- name: reference-as-text
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions WHERE reference = '1000037037';

-- name: id-as-bigint
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions WHERE id = 1234567;

-- name: account-id-as-int
-- schema: ledger
-- intent: fine
SELECT id, booked_at FROM transactions WHERE account_id = 4711::int;

-- name: country-as-bpchar
-- schema: ledger
-- intent: fine
SELECT count(*) FROM customers WHERE country = 'IS';

-- name: country-as-varchar
-- schema: ledger
-- intent: fine
SELECT count(*) FROM customers WHERE country = 'IS'::varchar;
