-- family: timezone-cast-predicate
-- source: https://use-the-index-luke.com/sql/where-clause/obfuscation/dates
-- source: https://www.postgresql.org/docs/current/functions-datetime.html#FUNCTIONS-DATETIME-ZONECONVERT
-- source: https://wiki.postgresql.org/wiki/Don%27t_Do_This#Don.27t_use_timestamp_.28without_time_zone.29
-- "Transactions of local day D" written as a conversion of the column (AT TIME ZONE, ::date,
-- date_trunc, to_char) hides the indexed timestamptz column; every row is converted and
-- compared. The same day written as a half-open range of timestamptz literals, or with the
-- conversion applied to the constants, uses the index.

-- name: local-day-at-time-zone
-- schema: ledger
-- intent: slow
SELECT id, amount_cents FROM transactions
WHERE (booked_at AT TIME ZONE 'Europe/Zurich')::date = date '2025-03-14';

-- name: new-york-day-date-trunc
-- schema: ledger
-- intent: slow
SELECT count(*) FROM transactions
WHERE date_trunc('day', booked_at AT TIME ZONE 'America/New_York') = timestamp '2025-07-04';

-- name: cast-to-date
-- schema: ledger
-- intent: slow
SELECT id, amount_cents FROM transactions WHERE booked_at::date = date '2025-03-14';

-- name: to-char-month
-- schema: ledger
-- intent: slow
SELECT sum(amount_cents) FROM transactions
WHERE to_char(booked_at, 'YYYY-MM') = '2025-02';

-- name: local-day-as-range
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions
WHERE booked_at >= timestamptz '2025-03-14 00:00 Europe/Zurich'
  AND booked_at < timestamptz '2025-03-15 00:00 Europe/Zurich';

-- name: zone-applied-to-constants
-- schema: ledger
-- intent: fine
SELECT count(*) FROM transactions
WHERE booked_at >= (timestamp '2025-07-04 00:00' AT TIME ZONE 'America/New_York')
  AND booked_at < (timestamp '2025-07-05 00:00' AT TIME ZONE 'America/New_York');

-- name: local-day-of-one-account
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions
WHERE account_id = 17 AND (booked_at AT TIME ZONE 'Europe/Zurich')::date = date '2025-03-14';

-- name: timestamp-literal-without-zone
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions
WHERE booked_at >= '2025-03-14 00:00:00'::timestamp AND booked_at < '2025-03-14 06:00:00'::timestamp;

-- name: local-day-within-indexed-week
-- schema: ledger
-- intent: fine
SELECT id, amount_cents FROM transactions
WHERE booked_at >= timestamptz '2025-09-01 00:00+00' AND booked_at < timestamptz '2025-09-08 00:00+00'
  AND (booked_at AT TIME ZONE 'Europe/Zurich')::date = date '2025-09-03';
