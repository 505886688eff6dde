-- RFC 9126: authorization requests pushed by their clients, kept until /authorize takes them
-- (once) or they expire, under the SHA-256 of their request_uri. `params` is the request's
-- parameters, form-encoded, as the client pushed them (or as its request object carried
-- them, RFC 9101), already checked against the authorization endpoint's rules.
CREATE TABLE pushed_requests (
    request_uri_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    params TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at);
-- RFC 9126 §6: the client's authorization requests must come through the PAR endpoint.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BIGINT NOT NULL DEFAULT 0;
