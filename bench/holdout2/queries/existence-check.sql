-- family: existence-check
-- source: https://blog.jooq.org/tag/exists/
-- source: https://www.red-gate.com/hub/product-learning/sql-prompt/finding-correlated-rows-using-exists-or-count
-- "Is there any …?" asked with count(*) counts every match; EXISTS stops at the first one, but
-- only if the first one comes early: for a rare value on an unindexed column, EXISTS still reads
-- the whole table. Fine when an index answers, or the value is common enough to be met at once.

-- name: count-for-rare-merchant
-- schema: ledger
-- intent: slow
SELECT count(*) > 0 AS has_payments FROM transactions WHERE merchant_id = 49999;

-- name: exists-for-rare-merchant
-- schema: ledger
-- intent: slow
SELECT EXISTS (SELECT 1 FROM transactions WHERE merchant_id = 49999) AS has_payments;

-- name: count-for-popular-merchant
-- schema: ledger
-- intent: slow
SELECT count(*) > 0 AS has_payments FROM transactions WHERE merchant_id = 1;

-- name: any-denied-for-actor
-- schema: ledger
-- intent: slow
SELECT EXISTS (SELECT 1 FROM audit_log WHERE actor_id = 1999999 AND payload ? 'reason');

-- name: exists-for-popular-merchant
-- schema: ledger
-- intent: fine
SELECT EXISTS (SELECT 1 FROM transactions WHERE merchant_id = 1) AS has_payments;

-- name: exists-for-account
-- schema: ledger
-- intent: fine
SELECT EXISTS (SELECT 1 FROM transactions WHERE account_id = 4711) AS has_payments;

-- name: count-for-account
-- schema: ledger
-- intent: fine
SELECT count(*) > 0 AS has_payments FROM transactions WHERE account_id = 4711;

-- name: exists-common-kind
-- schema: ledger
-- intent: fine
SELECT EXISTS (SELECT 1 FROM transactions WHERE kind = 'transfer' AND amount_cents < -1000);
