-- family: window-whole-table
-- source: pgMustard blog "Window functions and indexes" / Markus Winand, modern-sql.com "OVER and PARTITION BY"

-- name: top3-per-category
-- schema: bazaar
-- intent: slow
SELECT * FROM (
  SELECT id, category_id, price_cents,
         row_number() OVER (PARTITION BY category_id ORDER BY price_cents DESC) AS rn
  FROM listings) t
WHERE rn <= 3;

-- name: bidder-gaps-limited
-- schema: bazaar
-- intent: slow
SELECT bidder_id, placed_at, placed_at - lag(placed_at) OVER (PARTITION BY bidder_id ORDER BY placed_at) AS gap
FROM bids LIMIT 100;

-- name: running-total-members
-- schema: bazaar
-- intent: slow
SELECT id, joined_at, count(*) OVER (PARTITION BY country ORDER BY rating) AS n FROM members
ORDER BY id LIMIT 10;

-- name: rank-one-listing
-- schema: bazaar
-- intent: fine
SELECT id, amount_cents, rank() OVER (ORDER BY amount_cents DESC) FROM bids WHERE listing_id = 1500000;

-- name: row-number-index-order
-- schema: bazaar
-- intent: fine
SELECT id, created_at, row_number() OVER (ORDER BY created_at DESC) AS n FROM listings
ORDER BY created_at DESC LIMIT 20;

-- name: seller-window
-- schema: bazaar
-- intent: fine
SELECT id, price_cents, avg(price_cents) OVER (PARTITION BY category_id) FROM listings WHERE seller_id = 4711;
