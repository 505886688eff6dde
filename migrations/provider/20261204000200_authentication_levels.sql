-- Authentication methods and levels (RFC 8176 amr, OIDC Core acr).
-- Portable SQL (SQLite and PostgreSQL).
--
-- amr: the methods of the sign-in a code or refresh token came from, space-separated
-- ("pwd otp"); its ID tokens carry them, and the level they reach as acr. Rows from before
-- methods were recorded were password sign-ins.
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
-- acr: the level the grant's tokens state, when the request asked for an essential one (OIDC
-- Core 5.5.1.1: one of the values asked, which may be below the level reached); NULL: the
-- level its methods reach.
ALTER TABLE authorization_codes ADD COLUMN acr TEXT;
ALTER TABLE refresh_tokens ADD COLUMN acr TEXT;

-- What a client requires of a sign-in: default_acr_values (OIDC Dynamic Client Registration
-- §2), asked when a request names none, and require_mfa, an operator's setting that no
-- request can lower.
ALTER TABLE clients ADD COLUMN default_acr_values TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN require_mfa BIGINT NOT NULL DEFAULT 0;
