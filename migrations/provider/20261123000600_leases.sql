-- Leases: work that one instance at a time should do (sweeping, key rotation). A lease is
-- held until expires_at; its holder renews it, anyone may take it once it has expired.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
