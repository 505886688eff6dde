-- private_key_jwt client authentication (RFC 7523, OIDC Core §9).
-- The client's public keys (a JWK Set, JSON as TEXT).
ALTER TABLE clients ADD COLUMN jwks TEXT;
-- Assertion ids seen, kept until the assertion expires: each assertion is accepted once.
CREATE TABLE used_assertions (
    jti TEXT NOT NULL,
    client_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX used_assertions_expires_at ON used_assertions (expires_at);
