-- RFC 8628: device authorization requests waiting for a person. Both codes are stored as
-- their SHA-256 only. The person's approval is an authorization code stored under the device
-- code's hash (redirect URI `urn:ietf:params:oauth:grant-type:device_code`), so the grant's
-- redemption and every revocation of codes cover it; this row keeps the request, the poll
-- pace and the person's answer.
CREATE TABLE device_authorizations (
    device_code_hash TEXT PRIMARY KEY,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    poll_interval BIGINT NOT NULL,
    polled_at BIGINT,
    approved_at BIGINT,
    denied_at BIGINT
);
CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
