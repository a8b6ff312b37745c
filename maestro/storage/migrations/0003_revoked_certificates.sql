-- Client certificates refused before they expire, by serial. Every server replica keeps the whole
-- set in memory (it is small: certificates are short-lived) and checks it on every call; a NOTIFY
-- on maestro_revocations makes the other replicas reload it at once.
CREATE TABLE revoked_certificates (
    -- Lower-case hex without leading zeros: serials are random 159-bit numbers, over bigint.
    serial     text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    reason     text NOT NULL DEFAULT '',
    revoked_by text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
