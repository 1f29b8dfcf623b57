-- family: calendar-gap-fill
-- source: https://www.postgresql.org/docs/current/functions-srf.html
-- source: https://www.cybertec-postgresql.com/en/time-in-postgresql-outer-joins/
-- Daily series built from generate_series LEFT JOIN the fact table: joined on an expression of
-- the timestamp (::date, date_trunc) it hashes or loops over the whole table; a subquery per day
-- over a year re-reads hundreds of thousands of rows. Fine for one account or a few days joined
-- on an indexed range.

-- name: daily-totals-2025-cast-join
-- schema: ledger
-- intent: slow
SELECT d::date AS day, coalesce(sum(t.amount_cents), 0) AS total
FROM generate_series(date '2025-01-01', date '2025-12-31', interval '1 day') AS d
LEFT JOIN transactions t ON t.booked_at::date = d::date
GROUP BY d
ORDER BY d;

-- name: weekly-signups-date-trunc
-- schema: ledger
-- intent: slow
SELECT w AS week, count(c.id)
FROM generate_series(timestamptz '2024-01-01 00:00+00', timestamptz '2025-12-29 00:00+00', interval '1 week') AS w
LEFT JOIN customers c ON date_trunc('week', c.created_at) = w
GROUP BY w ORDER BY w;

-- name: daily-counts-subquery-per-day
-- schema: ledger
-- intent: slow
SELECT d AS day,
       (SELECT count(*) FROM transactions t
        WHERE t.booked_at >= d AND t.booked_at < d + interval '1 day') AS n
FROM generate_series(timestamptz '2024-01-01 00:00+00', timestamptz '2025-12-31 00:00+00', interval '1 day') AS d;

-- name: daily-totals-one-account
-- schema: ledger
-- intent: fine
SELECT d::date AS day, coalesce(sum(t.amount_cents), 0) AS total
FROM generate_series(timestamptz '2025-01-01 00:00+00', timestamptz '2025-12-31 00:00+00', interval '1 day') AS d
LEFT JOIN transactions t ON t.account_id = 17 AND t.booked_at >= d AND t.booked_at < d + interval '1 day'
GROUP BY d
ORDER BY d;

-- name: hourly-counts-one-day
-- schema: ledger
-- intent: fine
SELECT h AS hour, count(t.id)
FROM generate_series(timestamptz '2025-12-24 00:00+00', timestamptz '2025-12-24 23:00+00', interval '1 hour') AS h
LEFT JOIN transactions t ON t.booked_at >= h AND t.booked_at < h + interval '1 hour'
GROUP BY h ORDER BY h;

-- name: daily-rates-month
-- schema: ledger
-- intent: fine
SELECT d::date AS day, r.rate
FROM generate_series(date '2025-11-01', date '2025-11-30', interval '1 day') AS d
LEFT JOIN exchange_rates r ON r.currency = 'CHF' AND r.day = d::date
ORDER BY d;
