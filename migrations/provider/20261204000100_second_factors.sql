-- Second factors: an authenticator app (TOTP, RFC 6238) and its recovery codes.
-- Portable SQL (SQLite and PostgreSQL).
--
-- The TOTP seed must be read back to check a code, so unlike the provider's other secrets it
-- cannot be stored hashed. confirmed_at is NULL while the user has scanned it but not yet
-- proved it with a code (a confirmed factor is what sign-in asks for). last_step is the
-- highest time step a code was accepted for: each code counts once (RFC 6238 §5.2).
CREATE TABLE user_totp (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT 0
);

-- One-time recovery codes, stored as SHA-256 hex; used_at marks a code spent.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
