-- Secrets of the provider itself, made at first start (random) and shared by every instance.
-- `refresh_derivation` derives a refresh token's one successor from it, so that a retry
-- within the grace window gets the same successor back instead of a second one.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
