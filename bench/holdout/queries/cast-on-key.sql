-- family: cast-on-key
-- source: Use The Index, Luke! "Obfuscated Conditions: Numeric Strings" (a type mismatch moves the conversion onto the column)
-- source: PostgreSQL docs 10.2 "Operators" type resolution (bigint = numeric compares as numeric)

-- name: bigint-vs-numeric-literal
-- schema: bazaar
-- intent: slow
SELECT id, amount_cents FROM bids WHERE listing_id = 1500000.0;

-- name: id-cast-to-text
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE seller_id::text = '4711';

-- name: ref-code-cast-to-number
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE ref_code::bigint = 8794150487;

-- name: bigint-vs-integer-literal
-- schema: bazaar
-- intent: fine
SELECT id, amount_cents FROM bids WHERE listing_id = 1500000;

-- name: quoted-literal-on-bigint
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE id = '1234567';

-- name: ref-code-as-text
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE ref_code = '8794150487';
