-- RFC 9449 (DPoP): the proofs seen, by the SHA-256 of their key's thumbprint and `jti`, kept
-- until they could no longer be accepted (replay protection, §11.1); and the key a public
-- client's refresh tokens are bound to (§5).
CREATE TABLE dpop_proofs (
    proof_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
