-- family: implicit-cast
-- source: Use The Index, Luke, "Numeric strings" (comparing a text column to a number)
-- source: Percona blog, "Implicit type conversion and indexes"

-- name: external-ref-as-number
-- schema: saas
-- intent: slow
SELECT id, status FROM tickets WHERE external_ref::bigint = 1424242;

-- name: tracking-no-numeric-compare
-- schema: logi
-- intent: slow
SELECT id FROM shipments WHERE tracking_no::text::varchar(20) = 'TRK0000424242'::varchar(20)
  AND id::text = '424242';

-- name: id-as-text
-- schema: saas
-- intent: slow
SELECT id, subject FROM tickets WHERE id::text = '424242';

-- name: numeric-compare-on-int
-- schema: logi
-- intent: slow
SELECT shipment_id, line FROM shipment_items WHERE shipment_id::numeric = 424242.0;

-- name: external-ref-as-text
-- schema: saas
-- intent: fine
SELECT id, status FROM tickets WHERE external_ref = '1424242';

-- name: id-as-bigint-param
-- schema: saas
-- intent: fine
SELECT id, subject FROM tickets WHERE id = '424242';

-- name: int-key-with-int-literal
-- schema: logi
-- intent: fine
SELECT shipment_id, line FROM shipment_items WHERE shipment_id = 424242;

-- name: cast-on-small-table
-- schema: logi
-- intent: fine
SELECT id FROM warehouses WHERE id::text = '7';
