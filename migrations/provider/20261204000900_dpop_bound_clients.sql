-- RFC 9449 §5.2 `dpop_bound_access_tokens`: the client's token requests must carry a DPoP
-- proof, so that all its access tokens are bound.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BIGINT NOT NULL DEFAULT 0;
