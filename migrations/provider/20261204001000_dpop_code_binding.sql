-- RFC 9449 §10: an authorization code bound to the DPoP key the client named at the
-- authorization request (`dpop_jkt`, or the proof sent with its push, §10.1); redeemed only
-- with a proof by that key.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
