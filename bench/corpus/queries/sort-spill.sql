-- family: sort-spill
-- source: PostgreSQL docs 20.4.1 work_mem ("sort operations ... before writing to temporary disk files")
-- source: "external merge Disk" in EXPLAIN ANALYZE (Cybertec, depesz)

-- name: sort-all-tickets-by-subject
-- schema: saas
-- intent: slow
SELECT id, subject FROM tickets WHERE status = 'closed' ORDER BY subject;

-- name: sort-items-by-price
-- schema: logi
-- intent: slow
SELECT shipment_id, unit_price FROM shipment_items ORDER BY unit_price DESC, shipment_id;

-- name: sort-events-by-note
-- schema: saas
-- intent: slow
SELECT note FROM ticket_events WHERE kind = 'comment' ORDER BY note;

-- name: sort-fits-in-memory
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE tenant_id = 5000 ORDER BY subject;

-- name: sort-medium-table
-- schema: logi
-- intent: fine
SELECT id, name FROM products WHERE category = 'cat-0' ORDER BY price DESC;

-- name: sort-served-by-index
-- schema: logi
-- intent: fine
SELECT id, tracking_no FROM shipments
WHERE shipped_at >= timestamptz '2025-05-01' AND shipped_at < timestamptz '2025-05-01 03:00'
ORDER BY shipped_at;

-- name: sort-one-tenant-range
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE tenant_id BETWEEN 15000 AND 15100 ORDER BY subject;
