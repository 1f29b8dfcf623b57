-- ledger: a retail bank's core ledger (customers, accounts, transactions, an audit trail), written
-- for the second held-out set without reading querywatch's plan rules or any corpus queries.
-- Big: transactions (4M, ~210 B/row, jsonb meta), audit_log (5M, ~150 B/row, jsonb payload).
-- Medium: accounts (3M, ~130 B/row), customers (2M, ~290 B/row, text[] tags, jsonb prefs).
-- Small: merchants (50k), exchange_rates (~12k), branches (150).
-- Present indexes: primary keys, customers(email), customers(created_at),
--   customers(country, created_at), accounts(customer_id), accounts(iban) unique,
--   transactions(account_id, booked_at), transactions(booked_at), transactions(reference),
--   audit_log(entity, entity_id, at), exchange_rates(currency, day) (pk).
-- Deliberately missing: transactions(merchant_id) (nullable FK), transactions(counterparty_iban),
--   transactions(kind/status/amount_cents), GIN on transactions(meta) / customers(tags, prefs),
--   accounts(branch_id) (nullable FK), accounts(opened_at/currency), customers(referred_by)
--   (nullable self-FK), customers(phone), lower(customers.email), audit_log(at), audit_log(actor_id).
-- Shape: transactions.booked_at follows id (2023-01-01 .. 2025-12-31 00:00, ~3,650 a day); 10% of
--   transactions belong to 1,000 business accounts (ids 1..1000, ~400 each), the rest spread over
--   all accounts; merchant ~ random()^3 (merchant 1 takes ~3% of card payments), NULL for
--   transfers, fees, interest (38%); merchants above id 49,899 were onboarded late (payments only
--   in the last ~27 days, most have none); kind 'crypto' exists only from 2025-10-27; status
--   'pending' only in the last ~3 days; customers.kyc_status 'pending' only among the newest 2%;
--   25% of customers were referred (a forest); customers.created_at follows id (2012 .. 2025);
--   audit_log.at follows id (2024-01-01 .. 2025-12-31), actor NULL for 20% (system events).
SELECT setseed(0.4142135);

CREATE TABLE branches (
    id int PRIMARY KEY,
    city text NOT NULL,
    country char(2) NOT NULL,
    opened_on date NOT NULL
);
INSERT INTO branches
SELECT g,
       ('{Zurich,Geneva,Basel,Bern,Berlin,Munich,Hamburg,Vienna,Paris,Lyon,Milan,Madrid}'::text[])
           [1 + g % 12] || ' ' || g,
       ('{CH,CH,CH,CH,DE,DE,DE,AT,FR,FR,IT,ES}'::text[])[1 + g % 12],
       date '1990-01-01' + g * 61
FROM generate_series(1, 150) AS g;

CREATE TABLE merchants (
    id int PRIMARY KEY,
    name text NOT NULL,
    mcc int NOT NULL,
    category text NOT NULL,
    country char(2) NOT NULL,
    is_blocked boolean NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO merchants
SELECT g,
       ('{Coop,Migros,Aldi,Lidl,Shell,BP,Amazon,Zalando,SBB,Uber,Spotify,Netflix,Apple,IKEA,'
        'Decathlon,Starbucks}'::text[])[1 + g % 16] || ' #' || g,
       m.mcc,
       CASE m.mcc WHEN 5411 THEN 'grocery' WHEN 5541 THEN 'fuel' WHEN 5812 THEN 'restaurant'
                  WHEN 5814 THEN 'fast_food' WHEN 4111 THEN 'transit' WHEN 4121 THEN 'taxi'
                  WHEN 5732 THEN 'electronics' WHEN 5311 THEN 'department' WHEN 7832 THEN 'cinema'
                  ELSE 'other' END,
       ('{CH,DE,FR,IT,AT,US,GB,NL,ES,PT}'::text[])[1 + floor(10 * random() ^ 2)::int],
       random() < 0.002,
       timestamptz '2015-01-01' + g * interval '1 hour'
FROM (SELECT g, ('{5411,5541,5812,5814,4111,4121,5999,5732,5311,7832}'::int[])
                    [1 + floor(10 * random() ^ 1.5)::int] AS mcc
      FROM generate_series(1, 50000) AS g OFFSET 0) AS m;

CREATE TABLE customers (
    id int PRIMARY KEY,
    full_name text NOT NULL,
    email text NOT NULL,
    phone text,
    country char(2) NOT NULL,
    birth_date date NOT NULL,
    kyc_status text NOT NULL,
    segment text NOT NULL,
    referred_by int REFERENCES customers,
    created_at timestamptz NOT NULL,
    closed_at timestamptz,
    address text NOT NULL,
    tags text[] NOT NULL,
    prefs jsonb NOT NULL
);
INSERT INTO customers
SELECT g,
       fn || ' ' || ln,
       initcap(fn) || '.' || ln || g || '@' || ('{Mail.example,Post.example,Bank.example}'::text[])
           [1 + g % 3],
       CASE WHEN r1 < 0.85 THEN '+41 7' || lpad(((g::bigint * 7919) % 100000000)::text, 8, '0') END,
       ('{CH,DE,FR,IT,AT,ES,PT,NL,BE,GB,US,PL,SE,DK,NO,FI,IE,CZ,HU,RO,GR,TR,BR,CA,AU,JP,SG,MX,'
        'NZ,IS}'::text[])[1 + floor(30 * r2 ^ 2.5)::int],
       date '1940-01-01' + floor(r3 * 24000)::int,
       CASE WHEN g > 1960000 AND r4 < 0.85 THEN 'pending' WHEN r4 < 0.005 THEN 'rejected'
            ELSE 'verified' END,
       CASE WHEN r5 < 0.02 THEN 'business' WHEN r5 < 0.10 THEN 'premium' ELSE 'retail' END,
       CASE WHEN g > 1 AND r6 < 0.25 THEN 1 + floor(r7 * (g - 1))::int END,
       timestamptz '2012-01-01' + g * interval '220.9 seconds',
       CASE WHEN r8 < 0.04 THEN timestamptz '2012-01-01' + g * interval '220.9 seconds'
                                + (r9 * 1000) * interval '1 day' END,
       (1 + g % 97) || ' ' || ('{Bahnhofstrasse,Hauptstrasse,Rue de Lausanne,Via Roma,'
        'Gran Via,Kastanienallee,Seefeldstrasse}'::text[])[1 + g % 7] || ', '
           || lpad((1000 + g % 8999)::text, 4, '0') || ' ' || ln || 'ville',
       array_remove(ARRAY[CASE WHEN r10 < 0.45 THEN 't' || floor(40 * r11 ^ 2)::int END,
                          CASE WHEN r10 < 0.15 THEN 't' || floor(40 * r12 ^ 2)::int END,
                          CASE WHEN r10 < 0.002 THEN 'vip' END], NULL),
       jsonb_build_object('lang', ('{de,fr,it,en,es}'::text[])[1 + floor(5 * r12 ^ 2)::int],
                          'marketing', r13 < 0.3,
                          'notify', jsonb_build_object('email', r13 < 0.7, 'push', r11 < 0.5),
                          'theme', CASE WHEN r9 < 0.1 THEN 'dark' ELSE 'light' END)
           || CASE WHEN r14 < 0.001 THEN '{"beta": true}'::jsonb ELSE '{}'::jsonb END
FROM (SELECT g,
             ('{anna,luca,mia,noah,lea,elias,sofia,leon,emma,louis,lina,finn,nina,jan,sara,'
              'tim,julia,ben,laura,paul}'::text[])[1 + g % 20] AS fn,
             ('{muller,meier,schmid,keller,weber,huber,schneider,meyer,steiner,fischer,gerber,'
              'brunner,baumann,frei,zimmermann,moser}'::text[])[1 + (g / 20) % 16] AS ln,
             random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
             random() AS r6, random() AS r7, random() AS r8, random() AS r9, random() AS r10,
             random() AS r11, random() AS r12, random() AS r13, random() AS r14
      FROM generate_series(1, 2000000) AS g OFFSET 0) AS s;

CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    branch_id int REFERENCES branches,
    iban text NOT NULL,
    kind text NOT NULL,
    currency char(3) NOT NULL,
    status text NOT NULL,
    nickname text,
    opened_at timestamptz NOT NULL,
    closed_at timestamptz,
    balance_cents bigint NOT NULL,
    overdraft_limit_cents int
);
INSERT INTO accounts
SELECT g,
       1 + ((g - 1) * 2) / 3,
       CASE WHEN r1 < 0.35 THEN NULL ELSE 1 + floor(150 * r2 ^ 2)::int END,
       'CH' || lpad((g % 97)::text, 2, '0') || lpad(g::text, 17, '0'),
       CASE WHEN r3 < 0.60 THEN 'checking' WHEN r3 < 0.85 THEN 'savings' WHEN r3 < 0.97 THEN 'card'
            ELSE 'loan' END,
       CASE WHEN r4 < 0.70 THEN 'EUR' WHEN r4 < 0.85 THEN 'CHF' WHEN r4 < 0.95 THEN 'USD'
            WHEN r4 < 0.99 THEN 'GBP' ELSE 'JPY' END,
       CASE WHEN r5 < 0.045 THEN 'closed' WHEN r5 < 0.05 THEN 'frozen' ELSE 'open' END,
       CASE WHEN r1 < 0.7 THEN ('{Everyday,Holiday fund,Rainy day,Household,Kids,Business ops,Tax reserve,Car,Travel}'::text[])[1 + floor(9 * r6)::int] || ' account ' || g % 1000 END,
       timestamptz '2012-01-02' + g * interval '147 seconds',
       CASE WHEN r5 < 0.045 THEN timestamptz '2012-01-02' + g * interval '147 seconds'
                                 + (1 + r6 * 900) * interval '1 day' END,
       floor((r6 - 0.1) * 5000000)::bigint,
       CASE WHEN r3 < 0.60 THEN (1 + floor(r2 * 20)::int) * 50000 END
FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
             random() AS r6
      FROM generate_series(1, 3000000) AS g OFFSET 0) AS s;

CREATE TABLE transactions (
    id bigint PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    merchant_id int REFERENCES merchants,
    kind text NOT NULL,
    status text NOT NULL,
    amount_cents bigint NOT NULL,
    currency char(3) NOT NULL,
    booked_at timestamptz NOT NULL,
    value_date date NOT NULL,
    reference varchar(20) NOT NULL,
    counterparty_iban text,
    description text NOT NULL,
    meta jsonb NOT NULL
);
INSERT INTO transactions
SELECT g,
       acct,
       CASE WHEN kind NOT IN ('card', 'atm', 'refund') THEN NULL
            WHEN r3 > 0.99933 AND g < 3900000 THEN floor(50000 * r3 ^ 3)::int - 200
            ELSE 1 + floor(50000 * r3 ^ 3)::int END,
       kind,
       CASE WHEN g > 3989000 THEN 'pending' WHEN r4 < 0.003 THEN 'reversed'
            WHEN r4 < 0.0032 THEN 'disputed' ELSE 'posted' END,
       CASE WHEN kind IN ('refund', 'interest') THEN 1 ELSE -1 END
           * (100 + floor(exp(r5 * 11)))::bigint,
       CASE WHEN r6 < 0.80 THEN 'EUR' WHEN r6 < 0.88 THEN 'USD' WHEN r6 < 0.95 THEN 'CHF'
            WHEN r6 < 0.99 THEN 'GBP' ELSE 'JPY' END,
       ts,
       (ts + floor(r7 * 3) * interval '1 day')::date,
       (1000000000 + g * 37)::text,
       CASE WHEN kind IN ('transfer', 'direct_debit')
            THEN 'DE' || lpad((floor(2000000 * r8 ^ 2))::bigint::text, 20, '0') END,
       CASE kind WHEN 'card' THEN 'CARD PAYMENT ' || ('{COOP,MIGROS,ALDI,LIDL,SHELL,BP,AMAZON,ZALANDO,'
                                   'SBB,UBER,SPOTIFY,NETFLIX}'::text[])[1 + floor(12 * r9)::int]
                                   || ' ' || ('{ZURICH,BERLIN,PARIS,MILAN,VIENNA,MADRID}'::text[])
                                   [1 + floor(6 * r7)::int]
                 WHEN 'transfer' THEN 'SEPA TRANSFER INV-' || (g % 99991) || ' '
                                   || ('{rent,salary,invoice,gift,loan,savings}'::text[])
                                   [1 + floor(6 * r9)::int]
                 WHEN 'crypto' THEN 'CRYPTO EXCHANGE BTC/EUR ' || g % 1000
                 ELSE upper(kind) || ' ' || (g % 9973) END,
       jsonb_build_object('channel', ('{app,app,app,web,pos,pos,atm,api,branch}'::text[])
                                       [1 + floor(9 * r10)::int],
                          'risk', floor(100 * r11 ^ 4)::int,
                          'device', 'dev-' || floor(200000 * r12)::int)
           || CASE WHEN r13 < 0.01 THEN '{"flags": ["foreign"]}'::jsonb
                   WHEN r13 < 0.012 THEN '{"flags": ["foreign", "manual_review"]}'::jsonb
                   ELSE '{}'::jsonb END
FROM (SELECT g,
             timestamptz '2023-01-01 00:00:00+00' + g * interval '23.652 seconds' AS ts,
             CASE WHEN r1 < 0.10 THEN 1 + floor(1000 * r2)::bigint
                  ELSE 1 + floor(3000000 * r2 ^ 1.2)::bigint END AS acct,
             CASE WHEN g > 3765000 AND r14 < 0.004 THEN 'crypto'
                  WHEN r14 < 0.55 THEN 'card' WHEN r14 < 0.80 THEN 'transfer'
                  WHEN r14 < 0.85 THEN 'atm' WHEN r14 < 0.90 THEN 'direct_debit'
                  WHEN r14 < 0.95 THEN 'fee' WHEN r14 < 0.98 THEN 'interest' ELSE 'refund' END
                 AS kind,
             r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13
      FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                   random() AS r5, random() AS r6, random() AS r7, random() AS r8, random() AS r9,
                   random() AS r10, random() AS r11, random() AS r12, random() AS r13,
                   random() AS r14
            FROM generate_series(1, 4000000) AS g OFFSET 0) AS r OFFSET 0) AS s;

CREATE TABLE audit_log (
    id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    actor_id int,
    entity text NOT NULL,
    entity_id bigint NOT NULL,
    action text NOT NULL,
    ip text NOT NULL,
    payload jsonb NOT NULL
);
INSERT INTO audit_log
SELECT g,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '12.6 seconds',
       CASE WHEN r1 < 0.2 THEN NULL ELSE 1 + floor(2000000 * r2 ^ 1.5)::int END,
       ent,
       CASE ent WHEN 'customer' THEN 1 + floor(2000000 * r3)::bigint
                WHEN 'account' THEN 1 + floor(3000000 * r3)::bigint
                WHEN 'transaction' THEN 1 + floor(4000000 * r3)::bigint
                ELSE 1 + floor(500000 * r3)::bigint END,
       CASE ent WHEN 'session' THEN ('{login,login,login,logout,mfa_challenge}'::text[])
                                    [1 + floor(5 * r4)::int]
                ELSE ('{view,view,update,create,export}'::text[])[1 + floor(5 * r4)::int] END,
       '10.' || floor(r5 * 256)::int || '.' || floor(r6 * 256)::int || '.' || g % 256,
       jsonb_build_object('ua', ('{ios-app/7.2,android-app/7.1,Mozilla/5.0 Firefox,'
                                 'Mozilla/5.0 Chrome,Mozilla/5.0 Safari}'::text[])
                                [1 + floor(5 * r7)::int],
                          'ok', r8 > 0.02,
                          'ms', floor(5 + 500 * r6 ^ 3)::int)
           || CASE WHEN r8 < 0.02 THEN '{"reason": "denied"}'::jsonb ELSE '{}'::jsonb END
FROM (SELECT g,
             ('{session,session,session,account,account,customer,transaction,card}'::text[])
                 [1 + floor(8 * r0)::int] AS ent,
             r1, r2, r3, r4, r5, r6, r7, r8
      FROM (SELECT g, random() AS r0, random() AS r1, random() AS r2, random() AS r3,
                   random() AS r4, random() AS r5, random() AS r6, random() AS r7, random() AS r8
            FROM generate_series(1, 5000000) AS g OFFSET 0) AS r OFFSET 0) AS s;

CREATE TABLE exchange_rates (
    currency char(3) NOT NULL,
    day date NOT NULL,
    rate numeric(12, 6) NOT NULL,
    PRIMARY KEY (currency, day)
);
INSERT INTO exchange_rates
SELECT c, d::date, round((b * (0.95 + 0.1 * random()))::numeric, 6)
FROM (VALUES ('USD', 1.08), ('CHF', 0.96), ('GBP', 0.86), ('JPY', 158.0), ('SEK', 11.4),
             ('NOK', 11.6), ('DKK', 7.46), ('PLN', 4.35), ('CZK', 24.8), ('HUF', 390.0),
             ('CAD', 1.47)) AS v(c, b),
     generate_series(date '2023-01-01', date '2025-12-31', interval '1 day') AS d;

CREATE UNIQUE INDEX accounts_iban ON accounts (iban);
CREATE INDEX accounts_customer ON accounts (customer_id);
CREATE INDEX customers_email ON customers (email);
CREATE INDEX customers_created ON customers (created_at);
CREATE INDEX customers_country_created ON customers (country, created_at);
CREATE INDEX transactions_account_booked ON transactions (account_id, booked_at);
CREATE INDEX transactions_booked ON transactions (booked_at);
CREATE INDEX transactions_reference ON transactions (reference);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, at);
