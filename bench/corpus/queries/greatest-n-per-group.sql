-- family: greatest-n-per-group
-- source: Markus Winand "Top-N per group"; PostgreSQL wiki "Loose indexscan"; DISTINCT ON

-- name: latest-ticket-per-tenant
-- schema: saas
-- intent: slow
SELECT DISTINCT ON (tenant_id) tenant_id, id, subject FROM tickets ORDER BY tenant_id, created_at DESC;

-- name: heaviest-per-customer
-- schema: logi
-- intent: slow
SELECT DISTINCT ON (customer_id) customer_id, id, weight_kg FROM shipments
ORDER BY customer_id, weight_kg DESC;

-- name: max-per-ticket-groupby
-- schema: saas
-- intent: slow
SELECT ticket_id, max(created_at) FROM ticket_events GROUP BY ticket_id;

-- name: latest-ticket-one-tenant
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE tenant_id = 1 ORDER BY created_at DESC LIMIT 1;

-- name: lateral-top-per-group
-- schema: saas
-- intent: fine
SELECT m.id, l.id FROM teams m
CROSS JOIN LATERAL (SELECT id FROM tickets t WHERE t.tenant_id = m.tenant_id
                    ORDER BY created_at DESC LIMIT 1) l;

-- name: distinct-on-small
-- schema: logi
-- intent: fine
SELECT DISTINCT ON (category) category, id, price FROM products ORDER BY category, price DESC;
