-- Passkeys (WebAuthn Level 3): a user's registered credentials, and the ceremonies under way.
-- Portable SQL (SQLite and PostgreSQL).
--
-- credential_id is the WebAuthn credential id (base64url): one account per credential,
-- whoever registers it (WebAuthn §7.1 step 22). passkey is the credential as webauthn-rs
-- keeps it (public key, algorithm, signature counter, backup flags), JSON; it holds no
-- secret. sign_count mirrors its counter, so that two uses racing cannot both move it
-- (WebAuthn §7.2 step 22).
CREATE TABLE user_passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    sign_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX user_passkeys_user ON user_passkeys (user_id);

-- A ceremony under way: the challenge and what the answer must match (webauthn-rs state,
-- JSON), for one browser session and one purpose at a time. It is taken (deleted) by the
-- statement that reads it, so an answer is checked at most once.
CREATE TABLE passkey_ceremonies (
    session_handle TEXT NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (session_handle, purpose)
);
