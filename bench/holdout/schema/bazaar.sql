-- bazaar: a second-hand marketplace (listings, bids, members, a label many-to-many), written by
-- the held-out team without reading the main corpus's queries or querywatch's plan rules.
-- Big: listings (2M, ~350 B/row, jsonb attrs, text[] keywords), bids (4M), listing_labels (2.5M).
-- Medium: members (800k). Small: categories (600, a 3-level tree), labels (300).
-- Present indexes: primary keys, members(handle) unique, members(email),
--   listings(seller_id), listings(category_id, created_at), listings(created_at),
--   listings(ends_at) WHERE status = 'active' (partial), listings((attrs->>'brand')),
--   listings(ref_code), bids(listing_id, placed_at), listing_labels(listing_id, label_id) (pk).
-- Deliberately missing: listings(price_cents), listings(is_featured), listings(currency),
--   listings(region_id), GIN on listings(attrs) and listings(keywords), any text search index,
--   bids(bidder_id), bids(placed_at) alone, bids(amount_cents), listing_labels(label_id),
--   members(referrer_id), members(country), lower(members.handle).
-- Shape: listings.created_at follows id (about 1,830 a day from 2023-01-01 for 3 years);
--   status follows age (only the last ~60 days are 'active'); CHF prices exist only in the oldest
--   5% of listings; seller ~ random()^2 (low member ids sell a lot); bids favour newer listings;
--   label popularity ~ random()^2; referrals form a forest (30% of members were referred).
SELECT setseed(0.6180339);

CREATE TABLE categories (
    id int PRIMARY KEY,
    parent_id int REFERENCES categories,
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    meta jsonb NOT NULL
);
INSERT INTO categories
SELECT g,
       CASE WHEN g <= 6 THEN NULL WHEN g <= 60 THEN 1 + (g - 7) % 6 ELSE 7 + (g - 61) % 54 END,
       ('{home,garden,fashion,music,sports,toys,books,tools,kitchen,bikes,audio,vintage}'::text[])
           [1 + g % 12] || ' ' || g,
       'cat-' || g,
       jsonb_build_object('adult', g % 50 = 0, 'fee_pct', 5 + g % 7)
FROM generate_series(1, 600) AS g;

CREATE TABLE labels (
    id int PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL
);
INSERT INTO labels SELECT g, 'label-' || g, 'Label ' || g FROM generate_series(1, 300) AS g;

CREATE TABLE members (
    id int PRIMARY KEY,
    handle text NOT NULL,
    email text NOT NULL,
    country char(2) NOT NULL,
    joined_at timestamptz NOT NULL,
    is_verified boolean NOT NULL,
    referrer_id int,
    rating numeric(3, 2)
);
INSERT INTO members
SELECT g,
       ('{mara,tomo,ines,kofi,lena,ravi,yuki,omar,sven,ana,li,noor,eli,jonas,mei,paulo,zara,'
        'ivan,aiko,bea,cato,dana,emil,fay}'::text[])[1 + g % 24] || '_' || g,
       initcap(('{mara,tomo,ines,kofi,lena,ravi,yuki,omar,sven,ana,li,noor,eli,jonas,mei,paulo,'
                'zara,ivan,aiko,bea,cato,dana,emil,fay}'::text[])[1 + g % 24])
           || '.' || g || '@' || ('{Mail.example,Post.example,Box.example}'::text[])[1 + g % 3],
       ('{DE,US,FR,GB,ES,IT,NL,PL,SE,JP,BR,CA,AU,AT,CH,BE,DK,NO,FI,IE,PT,CZ,HU,RO,GR,MX,AR,NZ,'
        'SG,IS}'::text[])[1 + floor(30 * random() ^ 2)::int],
       timestamptz '2019-01-01' + g * interval '275 seconds',
       random() < 0.95,
       CASE WHEN g > 1 AND random() < 0.3 THEN 1 + floor(random() * (g - 1))::int END,
       round((1 + 4 * random())::numeric, 2)
FROM generate_series(1, 800000) AS g;

CREATE TABLE listings (
    id bigint PRIMARY KEY,
    seller_id int NOT NULL REFERENCES members,
    category_id int NOT NULL REFERENCES categories,
    title text NOT NULL,
    description text NOT NULL,
    price_cents int NOT NULL,
    currency char(3) NOT NULL,
    status text NOT NULL,
    is_featured boolean NOT NULL,
    created_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    region_id int,
    ref_code varchar(12) NOT NULL,
    attrs jsonb NOT NULL,
    keywords text[] NOT NULL
);
INSERT INTO listings
SELECT g,
       1 + floor(800000 * random() ^ 2)::int,
       61 + floor(540 * random())::int,
       ('{old,small,large,rare,classic,modern,used,mint,faded,heavy,light,tiny,giant,odd,fine}'
           ::text[])[1 + floor(15 * random())::int] || ' '
           || ('{brass,oak,steel,glass,wool,linen,leather,copper,pine,clay,silver,cotton,iron,'
               'bamboo,marble,rubber,felt,tin,walnut,cork}'::text[])[1 + floor(20 * random())::int]
           || ' '
           || ('{lamp,chair,table,vase,coat,bag,clock,radio,bike,guitar,mirror,shelf,bowl,kettle,'
               'desk,stool,rug,frame,jar,box,hat,boots,scarf,watch,camera,drum,sofa,bench,crate,'
               'tray,cup,plate,spoon,knife,lantern,fan,heater,speaker,piano,easel}'::text[])
               [1 + floor(40 * random())::int],
       repeat(md5(g::text), 5),
       100 + floor(500000 * random() ^ 3)::int,
       CASE WHEN g <= 100000 AND r < 0.6 THEN 'CHF' WHEN r < 0.72 THEN 'EUR' ELSE 'USD' END,
       CASE WHEN g > 1890000 THEN (CASE WHEN random() < 0.9 THEN 'active' ELSE 'sold' END)
            WHEN random() < 0.6 THEN 'sold' ELSE 'expired' END,
       random() < 0.005,
       created,
       created + (7 + floor(24 * random())::int) * interval '1 day',
       CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(200 * random())::int END,
       lpad(((g * 2654435761) % 10000000000)::text, 10, '0'),
       jsonb_build_object(
           'brand', CASE WHEN random() < 0.0004 THEN 'Zephyrine'
                         ELSE ('{Acme,Nordvik,Brightly,Kasa,Umbra,Oakline,Pell,Rivo,Sola,Tarn,'
                               'Vesta,Wren,Yara,Zuma,Alto,Bram,Cove,Dune,Ember,Fjell}'::text[])
                              [1 + floor(20 * random() ^ 2)::int] END,
           'color', ('{red,blue,green,black,white,teal,grey,brown,pink,gold,navy,olive}'::text[])
                        [1 + floor(12 * random())::int],
           'condition', CASE WHEN random() < 0.02 THEN 'refurbished'
                             WHEN random() < 0.5 THEN 'used' ELSE 'new' END),
       ARRAY[kw[1 + floor(150 * random())::int], kw[1 + floor(150 * random())::int]]
           || CASE WHEN random() < 0.3 THEN ARRAY[kw[1 + floor(150 * random())::int]]
                   ELSE '{}'::text[] END
FROM (
    SELECT g, random() AS r,
           timestamptz '2023-01-01' + g * interval '47.3 seconds' + random() * interval '1 hour'
               AS created,
           ARRAY(SELECT 'kw' || i FROM generate_series(1, 149) AS i) || ARRAY['vintage'] AS kw
    FROM generate_series(1, 2000000) AS g
) AS s;

CREATE TABLE bids (
    id bigint PRIMARY KEY,
    listing_id bigint NOT NULL REFERENCES listings,
    bidder_id int NOT NULL REFERENCES members,
    amount_cents int NOT NULL,
    placed_at timestamptz NOT NULL,
    is_auto boolean NOT NULL,
    retracted boolean NOT NULL
);
INSERT INTO bids
SELECT g, l,
       1 + floor(800000 * random() ^ 1.5)::int,
       100 + floor(100000 * random() ^ 2)::int,
       timestamptz '2023-01-01' + l * interval '47.3 seconds' + random() * interval '10 days',
       random() < 0.3,
       random() < 0.02
FROM (SELECT g, 1 + floor(2000000 * sqrt(random()))::bigint AS l
      FROM generate_series(1, 4000000) AS g) AS s;

CREATE TABLE listing_labels (
    listing_id bigint NOT NULL REFERENCES listings,
    label_id int NOT NULL REFERENCES labels,
    PRIMARY KEY (listing_id, label_id)
);
INSERT INTO listing_labels
SELECT g, CASE WHEN second THEN 1 + (l1 - 1 + k) % 300 ELSE l1 END
FROM (SELECT g, 1 + floor(300 * random() ^ 2)::int AS l1, 1 + floor(298 * random())::int AS k,
             random() < 0.25 AS extra
      FROM generate_series(1, 2000000) AS g) AS s,
     LATERAL (VALUES (false), (true)) AS v(second)
WHERE NOT second OR extra;

CREATE UNIQUE INDEX members_handle ON members (handle);
CREATE INDEX members_email ON members (email);
CREATE INDEX listings_seller ON listings (seller_id);
CREATE INDEX listings_category_created ON listings (category_id, created_at);
CREATE INDEX listings_created ON listings (created_at);
CREATE INDEX listings_active_ends ON listings (ends_at) WHERE status = 'active';
CREATE INDEX listings_brand ON listings ((attrs ->> 'brand'));
CREATE INDEX listings_ref_code ON listings (ref_code);
CREATE INDEX bids_listing_placed ON bids (listing_id, placed_at);
