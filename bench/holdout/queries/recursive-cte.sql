-- family: recursive-cte
-- source: PostgreSQL docs 7.8.2 "Recursive Queries" (each iteration joins the working table to the base table)
-- source: pganalyze blog "Recursive CTEs and hierarchies: index the parent key"

-- name: referral-downline
-- schema: bazaar
-- intent: slow
WITH RECURSIVE downline AS (
  SELECT id, 0 AS depth FROM members WHERE id = 2
  UNION ALL
  SELECT m.id, d.depth + 1 FROM members m JOIN downline d ON m.referrer_id = d.id WHERE d.depth < 6)
SELECT count(*) FROM downline;

-- name: category-subtree-listings
-- schema: bazaar
-- intent: slow
WITH RECURSIVE sub AS (
  SELECT id FROM categories WHERE id = 3
  UNION ALL
  SELECT c.id FROM categories c JOIN sub ON c.parent_id = sub.id)
SELECT count(*), avg(price_cents) FROM listings WHERE category_id IN (SELECT id FROM sub);

-- name: referral-chain-up
-- schema: bazaar
-- intent: fine
WITH RECURSIVE chain AS (
  SELECT id, referrer_id FROM members WHERE id = 654321
  UNION ALL
  SELECT m.id, m.referrer_id FROM members m JOIN chain c ON m.id = c.referrer_id)
SELECT * FROM chain;

-- name: category-breadcrumb
-- schema: bazaar
-- intent: fine
WITH RECURSIVE up AS (
  SELECT id, parent_id, name FROM categories WHERE id = 333
  UNION ALL
  SELECT c.id, c.parent_id, c.name FROM categories c JOIN up ON c.id = up.parent_id)
SELECT * FROM up;

-- name: category-subtree-newest
-- schema: bazaar
-- intent: fine
WITH RECURSIVE sub AS (
  SELECT id FROM categories WHERE id = 9
  UNION ALL
  SELECT c.id FROM categories c JOIN sub ON c.parent_id = sub.id)
SELECT l.id, l.title FROM listings l
WHERE l.category_id IN (SELECT id FROM sub) AND l.created_at > '2025-12-28';
