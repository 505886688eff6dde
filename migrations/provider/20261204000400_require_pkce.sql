-- Whether a client's authorization requests must carry a PKCE challenge (RFC 7636, RFC 9700
-- §2.1.1). On for every client; an operator may turn it off for a confidential client only
-- (`provider clients update ID --require-pkce false`), so that a certification-style client
-- that sends no challenge can be configured. A public client always needs it, whatever this
-- column says.
ALTER TABLE clients ADD COLUMN require_pkce BIGINT NOT NULL DEFAULT 1;
