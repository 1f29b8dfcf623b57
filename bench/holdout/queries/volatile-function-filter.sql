-- family: volatile-function-filter
-- source: PostgreSQL docs 38.7 "Function Volatility Categories" (a volatile expression is evaluated per row and cannot drive an index)
-- source: Stack Overflow "Best way to select random rows PostgreSQL" (ORDER BY random() sorts the whole table)

-- name: random-row-by-volatile-id
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE id = (random() * 1999999)::bigint + 1;

-- name: order-by-random
-- schema: bazaar
-- intent: slow
SELECT id, title FROM listings WHERE status = 'sold' ORDER BY random() LIMIT 5;

-- name: random-row-initplan
-- schema: bazaar
-- intent: fine
SELECT id, title FROM listings WHERE id = (SELECT (random() * 1999999)::bigint + 1);

-- name: order-by-random-small
-- schema: bazaar
-- intent: fine
SELECT id, name FROM categories ORDER BY random() LIMIT 5;
