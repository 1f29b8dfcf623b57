-- family: limit-early-stop-miss
-- source: pgMustard blog "Why is Postgres not using my index? LIMIT and correlated data" / Cybertec "ORDER BY LIMIT slow"
-- source: PostgreSQL docs 14.2 "Statistics Used by the Planner" (columns assumed independent)

-- name: newest-chf
-- schema: bazaar
-- intent: slow
SELECT id, title, price_cents FROM listings WHERE currency = 'CHF' ORDER BY created_at DESC LIMIT 10;

-- name: oldest-active
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE status = 'active' ORDER BY created_at LIMIT 10;

-- name: newest-eur
-- schema: bazaar
-- intent: fine
SELECT id, title, price_cents FROM listings WHERE currency = 'EUR' ORDER BY created_at DESC LIMIT 10;

-- name: newest-active
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE status = 'active' ORDER BY created_at DESC LIMIT 10;
