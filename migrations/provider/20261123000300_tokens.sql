-- Token lifecycle. Portable SQL (SQLite and PostgreSQL).

-- Every access token issued (they are RFC 9068 JWTs; this registry makes them revocable). The
-- row lives until the token expires; userinfo and introspection look the jti up here.
-- grant_id names what issued it: the authorization code's hash (shared by the refresh tokens
-- of that grant), so a replayed code or a reused refresh token revokes all of it.
CREATE TABLE access_tokens (
    jti TEXT PRIMARY KEY,
    grant_id TEXT,
    client_id TEXT NOT NULL,
    user_id TEXT,
    scope TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- Refresh tokens, stored hashed. One family per grant (grant_id); rotated on every use
-- (used_at); sid is the SSO session of an online grant, NULL for offline_access.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    sid TEXT,
    auth_time BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);
