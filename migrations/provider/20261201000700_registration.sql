-- Client registration (RFC 7591/7592, the developer console, `provider clients …`).
-- Who registered the app in the developer console (NULL: the command line or the registration
-- endpoint); the console lists and edits only its user's apps.
ALTER TABLE clients ADD COLUMN owner_id TEXT;
-- SHA-256 of the RFC 7592 registration access token of a dynamically registered client.
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT;
CREATE INDEX clients_owner_id ON clients (owner_id);
-- Initial access tokens (RFC 7591 §3): single use, until they expire. Only the hash is kept.
CREATE TABLE initial_access_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
