-- logi: parcels from warehouses to customers. Big: shipments (3M), shipment_items (4.5M),
-- tracking_events (4.5M), inventory (800k). Medium: customers (50k), products (20k).
-- Small: warehouses (40), carriers (25).
-- Present indexes: primary keys, customers(code), products(sku), shipments(tracking_no),
-- shipments(shipped_at), shipments(warehouse_id, status), tracking_events(shipment_id).
-- Deliberately missing: shipments(customer_id) (a foreign key), shipments(dest_country),
-- shipments(delivered_at), shipment_items(product_id) (a foreign key),
-- tracking_events(occurred_at), tracking_events(event_type), products(category).
-- Skew and correlation: customer_id ~ random()^2; each carrier ships to one country
-- (carrier_id and dest_country are correlated); delivered_at is null unless delivered;
-- product popularity ~ random()^4.
SELECT setseed(0.29);

CREATE TABLE warehouses (
    id int PRIMARY KEY,
    code text NOT NULL UNIQUE,
    country text NOT NULL,
    capacity int NOT NULL
);
INSERT INTO warehouses
SELECT g, 'WH' || lpad(g::text, 3, '0'), (ARRAY['DE', 'FR', 'US', 'GB', 'PL'])[1 + g % 5], 1000 * g
FROM generate_series(1, 40) AS g;

CREATE TABLE carriers (
    id int PRIMARY KEY,
    name text NOT NULL,
    country text NOT NULL
);
INSERT INTO carriers
SELECT g, 'Carrier ' || g,
       (ARRAY['DE', 'FR', 'US', 'GB', 'PL', 'IT', 'ES', 'NL', 'BE', 'AT', 'SE', 'DK', 'CZ',
              'PT', 'IE', 'FI', 'NO', 'CH', 'HU', 'RO', 'GR', 'SK', 'SI', 'HR', 'BG'])[g]
FROM generate_series(1, 25) AS g;

CREATE TABLE customers (
    id int PRIMARY KEY,
    code text NOT NULL,
    name text NOT NULL,
    country text NOT NULL,
    tier text NOT NULL,
    email text,
    created_at timestamptz NOT NULL
);
INSERT INTO customers
SELECT g, 'C' || lpad(g::text, 7, '0'), 'Customer ' || md5(g::text),
       (ARRAY['DE', 'FR', 'US', 'GB', 'PL', 'IT', 'ES', 'NL'])[1 + g % 8],
       CASE WHEN g % 50 = 0 THEN 'gold' WHEN g % 7 = 0 THEN 'silver' ELSE 'standard' END,
       CASE WHEN g % 4 <> 0 THEN 'buyer' || g || '@shop.example' END,
       timestamptz '2020-01-01' + g * interval '30 minutes'
FROM generate_series(1, 50000) AS g;
CREATE UNIQUE INDEX customers_code ON customers (code);

CREATE TABLE products (
    id int PRIMARY KEY,
    sku text NOT NULL,
    name text NOT NULL,
    category text NOT NULL,
    weight_g int NOT NULL,
    price numeric(10, 2) NOT NULL,
    discontinued boolean NOT NULL,
    description text NOT NULL
);
INSERT INTO products
SELECT g, 'SKU-' || lpad(g::text, 6, '0'), 'Product ' || g,
       'cat-' || floor(40 * random() ^ 2)::int,
       50 + floor(20000 * random())::int, round((1 + 500 * random())::numeric, 2),
       random() < 0.1, repeat(md5(g::text), 6)
FROM generate_series(1, 20000) AS g;
CREATE UNIQUE INDEX products_sku ON products (sku);

CREATE TABLE shipments (
    id bigint PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    warehouse_id int NOT NULL REFERENCES warehouses,
    carrier_id int NOT NULL REFERENCES carriers,
    dest_country text NOT NULL,
    status text NOT NULL,
    tracking_no text NOT NULL,
    shipped_at timestamptz NOT NULL,
    delivered_at timestamptz,
    weight_kg numeric(8, 2) NOT NULL,
    declared_value numeric(12, 2),
    notes text
);
INSERT INTO shipments
SELECT g, 1 + floor(50000 * random() ^ 2)::int, 1 + floor(40 * random())::int, carrier_id,
       CASE WHEN random() < 0.95 THEN c.country ELSE 'DE' END,
       status,
       'TRK' || lpad(g::text, 10, '0'),
       shipped_at,
       CASE WHEN status = 'delivered' THEN shipped_at + random() * interval '6 days' END,
       round((0.1 + 30 * random() ^ 3)::numeric, 2),
       CASE WHEN random() < 0.4 THEN round((500 * random())::numeric, 2) END,
       CASE WHEN random() < 0.05 THEN 'Leave at the door, code ' || g END
FROM (
    SELECT g, 1 + floor(25 * random() ^ 1.5)::int AS carrier_id,
           timestamptz '2024-01-01' + g * interval '20 seconds' AS shipped_at,
           CASE WHEN g < 2850000 THEN
                    CASE WHEN random() < 0.98 THEN 'delivered' ELSE 'returned' END
                ELSE (ARRAY['created', 'in_transit', 'in_transit', 'in_transit', 'exception',
                            'delivered'])[1 + floor(6 * random())::int]
           END AS status
    FROM generate_series(1, 3000000) AS g
) AS s JOIN carriers AS c ON c.id = s.carrier_id;
CREATE UNIQUE INDEX shipments_tracking_no ON shipments (tracking_no);
CREATE INDEX shipments_shipped_at ON shipments (shipped_at);
CREATE INDEX shipments_warehouse_status ON shipments (warehouse_id, status);

CREATE TABLE shipment_items (
    shipment_id bigint NOT NULL REFERENCES shipments,
    line smallint NOT NULL,
    product_id int NOT NULL REFERENCES products,
    qty int NOT NULL,
    unit_price numeric(10, 2) NOT NULL,
    PRIMARY KEY (shipment_id, line)
);
INSERT INTO shipment_items
SELECT 1 + ((g - 1) * 2) / 3, 1 + ((g - 1) * 2) % 3 / 2, 1 + floor(20000 * random() ^ 4)::int,
       1 + floor(5 * random() ^ 2)::int, round((1 + 200 * random())::numeric, 2)
FROM generate_series(1, 4500000) AS g;

CREATE TABLE tracking_events (
    id bigint PRIMARY KEY,
    shipment_id bigint NOT NULL REFERENCES shipments,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    location text NOT NULL,
    detail text
);
INSERT INTO tracking_events
SELECT g, shipment_id,
       (ARRAY['label_created', 'picked_up', 'in_transit', 'in_transit', 'out_for_delivery',
              'delivered', 'in_transit', 'in_transit', 'picked_up', 'exception'])[1 + (g % 10)],
       timestamptz '2024-01-01' + shipment_id * interval '20 seconds' + (g % 10) * interval '7 hours',
       'Hub ' || (shipment_id % 300),
       CASE WHEN g % 10 = 9 THEN 'Address issue: ' || md5(g::text) END
FROM (SELECT g, 1 + ((g - 1) * 2) / 3 AS shipment_id FROM generate_series(1, 4500000) AS g) AS s;
CREATE INDEX tracking_events_shipment ON tracking_events (shipment_id);

CREATE TABLE inventory (
    warehouse_id int NOT NULL REFERENCES warehouses,
    product_id int NOT NULL REFERENCES products,
    qty int NOT NULL,
    reserved int NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (warehouse_id, product_id)
);
INSERT INTO inventory
SELECT w, p, floor(500 * random() ^ 3)::int, floor(10 * random())::int,
       timestamptz '2026-01-01' + random() * interval '330 days'
FROM generate_series(1, 40) AS w, generate_series(1, 20000) AS p;
