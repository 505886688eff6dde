-- Server-side sessions (sessions crate). Portable SQL: SQLite and PostgreSQL.
-- Only the SHA-256 of a session id is stored; `handle` is the public, stable name (OIDC sid).
CREATE TABLE sessions (
    handle TEXT PRIMARY KEY,
    id_hash TEXT NOT NULL UNIQUE,
    user_id TEXT,
    external_key TEXT,
    data TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    auth_time BIGINT,
    user_agent TEXT,
    client_addr TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_external_key ON sessions (external_key);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);
CREATE INDEX sessions_absolute_expires_at ON sessions (absolute_expires_at);
