-- APIs that accept Gatehouse access tokens. Portable SQL (SQLite and PostgreSQL).
--
-- A resource is named by its resource indicator (RFC 8707 §2: an absolute URI without a
-- fragment), which becomes the `aud` of the JWT access tokens issued for it (RFC 9068 §3).
-- scopes: the space-separated scopes the API defines (notes:read notes:write);
-- access_token_lifetime: seconds; access_token_alg: RS256 (which every RFC 9068 resource
-- server supports, §2.1) or ES256; client_id: the client the API itself authenticates as, to
-- introspect the tokens addressed to it (RFC 7662 §2.1), NULL if it validates them locally only.
-- created_at also tells one registration of an indicator from a later one (grant_resources).
CREATE TABLE resources (
    resource_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    access_token_lifetime BIGINT NOT NULL,
    access_token_alg TEXT NOT NULL,
    client_id TEXT REFERENCES clients (client_id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX resources_client ON resources (client_id);

-- The API a grant may obtain access tokens for, and the scopes granted there (RFC 8707 §2.1:
-- `resource` at the authorization request). grant_id is the code's hash, as in grants, written
-- with the code; expires_at bounds the longest the grant can live, for the sweep. No foreign
-- key to resources: a code issued as its API is removed must not fail; tokens are only ever
-- issued through a join with the registration the grant was given (generation = its
-- created_at), and removing a resource deletes its rows here.
CREATE TABLE grant_resources (
    grant_id TEXT PRIMARY KEY,
    resource_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX grant_resources_expires_at ON grant_resources (expires_at);
CREATE INDEX grant_resources_resource ON grant_resources (resource_id);

-- What a user allowed a third-party app at an API, beside the consents row for its OpenID
-- scopes (withdrawn with it; removing the resource deletes its rows here).
CREATE TABLE consent_resources (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id, resource_id),
    FOREIGN KEY (user_id, client_id) REFERENCES consents (user_id, client_id) ON DELETE CASCADE
);
CREATE INDEX consent_resources_resource ON consent_resources (resource_id);
