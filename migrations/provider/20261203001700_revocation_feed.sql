-- The revocation feed of APIs. Portable SQL (SQLite and PostgreSQL).
--
-- resource_id: the API an access token is addressed to (its `aud`), NULL for the provider's
-- own tokens (userinfo). The feed an API subscribes to is the set of its tokens revoked and
-- not yet expired: rows of this registry, which every revocation already updates in the
-- transaction that revokes the grant or session (provider/src/store/grants.rs), so the feed
-- cannot miss one. Revoked rows of an API stay until the token expires, even when their
-- user is removed. The partial index serves both the feed's poll (recently revoked) and a
-- subscriber's catch-up; the provider's own tokens never enter it.
ALTER TABLE access_tokens ADD COLUMN resource_id TEXT;
CREATE INDEX access_tokens_api_revoked ON access_tokens (revoked_at)
    WHERE resource_id IS NOT NULL;
