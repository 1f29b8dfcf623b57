-- saas: a multi-tenant help desk. Big: tickets (2M, wide), ticket_events (3M), users (2M).
-- Medium: tenants (20k), kb_articles (30k). Small: teams (300), sla_policies (12).
-- Present indexes: primary keys, users(tenant_id), users(email), tickets(tenant_id, created_at),
-- tickets(requester_id), tickets(created_at), tickets(status), tickets(external_ref),
-- ticket_events(ticket_id). Deliberately missing: tickets(assignee_id), tickets(team_id),
-- tickets(closed_at), tickets(priority), ticket_events(actor_id), ticket_events(created_at),
-- users(last_login_at), lower(users.email).
-- Skew: tenant_id ~ random()^3 (tenant 1 holds ~8% of tickets); status follows age (old tickets
-- are closed); priority follows channel; closed_at is null exactly when status is not closed.
SELECT setseed(0.17);

CREATE TABLE sla_policies (
    id int PRIMARY KEY,
    name text NOT NULL,
    priority smallint NOT NULL,
    first_reply_minutes int NOT NULL,
    resolve_minutes int NOT NULL
);
INSERT INTO sla_policies
SELECT g, 'sla-' || g, 1 + g % 4, 15 * g, 240 * g FROM generate_series(1, 12) AS g;

CREATE TABLE tenants (
    id int PRIMARY KEY,
    name text NOT NULL,
    plan text NOT NULL,
    region text NOT NULL,
    sla_policy_id int REFERENCES sla_policies,
    created_at timestamptz NOT NULL,
    settings jsonb
);
INSERT INTO tenants
SELECT g, 'Tenant ' || g,
       CASE WHEN r < 0.7 THEN 'free' WHEN r < 0.95 THEN 'team' ELSE 'enterprise' END,
       (ARRAY['eu', 'us', 'apac', 'latam'])[1 + g % 4],
       CASE WHEN r >= 0.7 THEN 1 + g % 12 END,
       timestamptz '2018-01-01' + g * interval '3 hours',
       CASE WHEN g % 5 = 0 THEN jsonb_build_object('sso', true, 'locale', 'en') END
FROM (SELECT g, random() AS r FROM generate_series(1, 20000) AS g) AS s;

CREATE TABLE teams (
    id int PRIMARY KEY,
    tenant_id int NOT NULL REFERENCES tenants,
    name text NOT NULL
);
INSERT INTO teams SELECT g, 1 + (g - 1) % 100, 'team ' || g FROM generate_series(1, 300) AS g;

CREATE TABLE users (
    id int PRIMARY KEY,
    tenant_id int NOT NULL REFERENCES tenants,
    email text NOT NULL,
    display_name text NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL,
    last_login_at timestamptz,
    deleted_at timestamptz,
    bio text
);
INSERT INTO users
SELECT g,
       1 + floor(20000 * random() ^ 3)::int,
       'User' || g || '@Mail' || (g % 97) || '.example.COM',
       'User number ' || g,
       CASE WHEN g <= 20000 THEN 'agent' WHEN g <= 20500 THEN 'admin' ELSE 'customer' END,
       timestamptz '2019-01-01' + g * interval '45 seconds',
       CASE WHEN random() < 0.7 THEN timestamptz '2026-01-01' + random() * interval '330 days' END,
       CASE WHEN random() < 0.03 THEN timestamptz '2026-06-01' + random() * interval '150 days' END,
       CASE WHEN g % 10 = 0 THEN repeat('about me ', 20) END
FROM generate_series(1, 2000000) AS g;
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE kb_articles (
    id int PRIMARY KEY,
    tenant_id int NOT NULL REFERENCES tenants,
    title text NOT NULL,
    body text NOT NULL,
    views int NOT NULL,
    published boolean NOT NULL
);
INSERT INTO kb_articles
SELECT g, 1 + floor(20000 * random() ^ 2)::int, 'How to ' || md5(g::text),
       repeat(md5((g * 7)::text), 10), floor(10000 * random() ^ 4)::int, random() < 0.8
FROM generate_series(1, 30000) AS g;

CREATE TABLE tickets (
    id bigint PRIMARY KEY,
    tenant_id int NOT NULL REFERENCES tenants,
    requester_id int NOT NULL REFERENCES users,
    assignee_id int REFERENCES users,
    team_id int REFERENCES teams,
    status text NOT NULL,
    priority smallint NOT NULL,
    channel text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    external_ref varchar(20),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    closed_at timestamptz,
    satisfaction smallint
);
INSERT INTO tickets
SELECT g, tenant_id, requester_id,
       CASE WHEN status <> 'new' THEN 1 + floor(20000 * random())::int END,
       CASE WHEN random() < 0.6 THEN 1 + floor(300 * random())::int END,
       status,
       CASE channel WHEN 'phone' THEN 1 + floor(2 * random())::int
                    WHEN 'chat' THEN 2 + floor(2 * random())::int
                    ELSE 3 + floor(2 * random())::int END,
       channel,
       'Problem with order ' || (g % 100000) || ' ' || left(md5(g::text), 8),
       repeat(md5(g::text), 8),
       CASE WHEN g % 3 = 0 THEN (1000000 + g)::text END,
       created_at,
       created_at + interval '2 hours',
       CASE WHEN status = 'closed' THEN created_at + random() * interval '10 days' END,
       CASE WHEN status = 'closed' AND random() < 0.25 THEN 1 + floor(5 * random())::int END
FROM (
    SELECT g,
           1 + floor(20000 * random() ^ 3)::int AS tenant_id,
           1 + floor(2000000 * random())::int AS requester_id,
           timestamptz '2023-01-01' + g * interval '60 seconds' AS created_at,
           CASE WHEN g < 1900000 AND random() < 0.97 THEN 'closed'
                ELSE (ARRAY['new', 'open', 'open', 'pending', 'solved'])[1 + floor(5 * random())::int]
           END AS status,
           (ARRAY['email', 'email', 'web', 'web', 'web', 'chat', 'phone'])[1 + floor(7 * random())::int]
               AS channel
    FROM generate_series(1, 2000000) AS g
) AS s;
CREATE INDEX tickets_tenant_created ON tickets (tenant_id, created_at);
CREATE INDEX tickets_requester ON tickets (requester_id);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_status ON tickets (status);
CREATE INDEX tickets_external_ref ON tickets (external_ref);

CREATE TABLE ticket_events (
    id bigint PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES tickets,
    actor_id int REFERENCES users,
    kind text NOT NULL,
    created_at timestamptz NOT NULL,
    note text
);
INSERT INTO ticket_events
SELECT g, ticket_id,
       CASE WHEN kind <> 'sla_breach' THEN 1 + floor(20000 * random())::int END,
       kind,
       timestamptz '2023-01-01' + ticket_id * interval '60 seconds' + random() * interval '3 days',
       CASE WHEN kind = 'comment' THEN 'Comment ' || md5(g::text) || md5((g + 1)::text) END
FROM (
    SELECT g, 1 + floor(2000000 * random())::bigint AS ticket_id,
           (ARRAY['comment', 'comment', 'comment', 'status_change', 'status_change', 'assign',
                  'comment', 'comment', 'status_change', 'assign', 'comment', 'comment',
                  'status_change', 'assign', 'comment', 'comment', 'status_change', 'comment',
                  'assign', 'sla_breach'])[1 + floor(20 * random())::int] AS kind
    FROM generate_series(1, 3000000) AS g
) AS s;
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id);
