-- Authorization requests waiting for a person (to sign in, or to approve the app), one row
-- each, so that any number of tabs of one browser can wait at once without one's write
-- replacing another's (they used to live inside the browser's session record). id_hash is
-- the SHA-256 of the random id in the page's address; session_handle binds the request to the
-- browser session that started it (the handle survives the sign-in).
CREATE TABLE pending_requests (
    id_hash TEXT PRIMARY KEY,
    session_handle TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_requests_session ON pending_requests (session_handle, created_at);
CREATE INDEX pending_requests_expires_at ON pending_requests (expires_at);
