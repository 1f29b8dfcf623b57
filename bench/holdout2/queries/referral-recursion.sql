-- family: referral-recursion
-- source: https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-RECURSIVE
-- source: https://www.sql-practice.online/learning/subqueries-ctes/recursive-ctes-for-hierarchical-data/performance
-- Walking a hierarchy with WITH RECURSIVE repeats the join once per level: downwards through an
-- unindexed parent column (referred_by) every level scans the table. Upwards through the primary
-- key each level is one index lookup.

-- name: downline-of-early-customer
-- schema: ledger
-- intent: slow
WITH RECURSIVE downline AS (
    SELECT id, 0 AS depth FROM customers WHERE id = 7
    UNION ALL
    SELECT c.id, d.depth + 1 FROM customers c JOIN downline d ON c.referred_by = d.id
    WHERE d.depth < 4
)
SELECT count(*) FROM downline;

-- name: direct-referrals
-- schema: ledger
-- intent: slow
WITH RECURSIVE downline AS (
    SELECT id, 0 AS depth FROM customers WHERE id = 1500000
    UNION ALL
    SELECT c.id, d.depth + 1 FROM customers c JOIN downline d ON c.referred_by = d.id
    WHERE d.depth < 1
)
SELECT id, depth FROM downline;

-- name: upline-of-new-customer
-- schema: ledger
-- intent: fine
WITH RECURSIVE upline AS (
    SELECT id, referred_by, 0 AS depth FROM customers WHERE id = 1999993
    UNION ALL
    SELECT c.id, c.referred_by, u.depth + 1 FROM customers c JOIN upline u ON c.id = u.referred_by
)
SELECT id, depth FROM upline;

-- name: upline-of-many
-- schema: ledger
-- intent: fine
WITH RECURSIVE upline AS (
    SELECT id, referred_by, 0 AS depth FROM customers WHERE id BETWEEN 1999000 AND 1999200
    UNION ALL
    SELECT c.id, c.referred_by, u.depth + 1 FROM customers c JOIN upline u ON c.id = u.referred_by
)
SELECT depth, count(*) FROM upline GROUP BY depth;

-- name: category-like-branch-tree
-- schema: ledger
-- intent: fine
WITH RECURSIVE seq AS (
    SELECT id, opened_on FROM branches WHERE id = 1
    UNION ALL
    SELECT b.id, b.opened_on FROM branches b JOIN seq s ON b.id = s.id + 1
)
SELECT count(*) FROM seq;
