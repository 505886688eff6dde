-- OpenID Connect Front-Channel Logout 1.0 §2: where an app wants to be framed by the
-- provider's signed-out page, and whether it wants `iss` and `sid` on that URI.
ALTER TABLE clients ADD COLUMN frontchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN frontchannel_logout_session_required BIGINT NOT NULL DEFAULT 0;
