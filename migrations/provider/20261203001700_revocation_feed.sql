-- The revocation feed of APIs. Portable SQL (SQLite and PostgreSQL).
--
-- resource_id: the API an access token is addressed to (its `aud`), NULL for the provider's
-- own tokens (userinfo). The feed an API subscribes to is the set of its tokens revoked and
-- not yet expired: rows of this registry, which every revocation already updates in the
-- transaction that revokes the grant or session (provider/src/store/grants.rs), so the feed
-- cannot miss one. Revoked rows of an API stay until the token expires, even when their
-- user or app is removed. Two partial indexes: the feed's poll (recently revoked tokens of
-- APIs), and a subscriber's catch-up (its API's revoked tokens not yet expired); unrevoked
-- tokens and the provider's own never enter them.
ALTER TABLE access_tokens ADD COLUMN resource_id TEXT;
CREATE INDEX access_tokens_api_revoked ON access_tokens (revoked_at)
    WHERE resource_id IS NOT NULL;
CREATE INDEX access_tokens_api_revoked_by_resource ON access_tokens (resource_id, expires_at)
    WHERE revoked_at IS NOT NULL AND resource_id IS NOT NULL;
