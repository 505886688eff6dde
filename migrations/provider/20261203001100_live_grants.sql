-- One notion of a live grant. Portable SQL (SQLite and PostgreSQL).
--
-- Every write that issues a token checks, in its own transaction, a row that every revocation
-- updates first (a conditional UPDATE that also locks the row until the commit): a code
-- redemption its code, a refresh its grant, a code issuance its SSO session's ledger row.
-- A revocation updates those rows first and the tokens hanging off them after, in later
-- statements of one transaction, so whatever order the two commit in, no token it should
-- have caught survives it (see provider/src/store/grants.rs).

-- A grant: what one authorization code started (grant_id is that code's hash, as in
-- access_tokens and refresh_tokens). sid is the SSO session of an online grant, which dies
-- with it; NULL for offline_access. last_used_at is its latest token issuance.
CREATE TABLE grants (
    grant_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sid TEXT,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_sid ON grants (sid);
CREATE INDEX grants_user_client ON grants (user_id, client_id);

-- The grants of tokens issued before this table existed.
INSERT INTO grants (grant_id, client_id, user_id, sid, scope, created_at, last_used_at,
                    expires_at, revoked_at)
SELECT grant_id, MIN(client_id), MIN(user_id), MIN(sid), MIN(scope), MIN(issued_at),
       MAX(COALESCE(used_at, issued_at)), MIN(family_expires_at), MAX(revoked_at)
FROM refresh_tokens GROUP BY grant_id;
INSERT INTO grants (grant_id, client_id, user_id, sid, scope, created_at, last_used_at,
                    expires_at, revoked_at)
SELECT grant_id, MIN(client_id), MIN(user_id), NULL, MIN(scope), MIN(issued_at),
       MAX(issued_at), MAX(expires_at), MAX(revoked_at)
FROM access_tokens
WHERE grant_id IS NOT NULL AND user_id IS NOT NULL
  AND grant_id NOT IN (SELECT grant_id FROM grants)
GROUP BY grant_id;

-- A code revoked before it was redeemed (its session ended, its app was disconnected).
ALTER TABLE authorization_codes ADD COLUMN revoked_at BIGINT;
CREATE INDEX authorization_codes_sid ON authorization_codes (sid);
CREATE INDEX authorization_codes_user_client ON authorization_codes (user_id, client_id);

-- The ledger of SSO sessions that issued codes: a row is written (live) with a session's
-- first code and marked ended by every end of the session, before its codes and grants are
-- revoked. Kept past the end, so that a code issuance racing the end finds it over.
CREATE TABLE sso_sessions (
    sid TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX sso_sessions_expires_at ON sso_sessions (expires_at);
