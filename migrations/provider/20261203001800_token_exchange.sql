-- Token exchange (RFC 8693) between APIs. Portable SQL (SQLite and PostgreSQL).
--
-- A rule lets the API client client_id exchange the tokens addressed to its own API for
-- tokens addressed to resource_id, with at most `scopes` (space-separated, among that API's).
-- Without a rule no exchange happens. Removing either side removes the rule.
CREATE TABLE token_exchange_rules (
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL REFERENCES resources (resource_id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, resource_id)
);
CREATE INDEX token_exchange_rules_resource ON token_exchange_rules (resource_id);

-- An exchanged token names the token it was exchanged for (parent_jti), and shares its
-- grant: revoking the parent revokes it, as revoking the grant or ending its session does.
ALTER TABLE access_tokens ADD COLUMN parent_jti TEXT;
CREATE INDEX access_tokens_parent ON access_tokens (parent_jti) WHERE parent_jti IS NOT NULL;
