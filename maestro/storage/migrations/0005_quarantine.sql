-- Events that keep failing are set aside so that they block nothing: a spec event Kafka refuses
-- for good (too large for its topic, a principal refused), a status event the server cannot
-- decode or store. An operator lists them, retries or drops them (`fleetplane maestro quarantine`).

-- How many times Kafka refused a spec event for good, and why the last time.
ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error text;

CREATE TABLE quarantine (
    id              bigserial PRIMARY KEY,
    -- 'spec': an outbox row (server -> agent); 'status': a message read from a status topic.
    kind            text NOT NULL CHECK (kind IN ('spec', 'status')),
    -- The consumer it belongs to ('' when its topic names none).
    consumer        text NOT NULL,
    resource_id     uuid,
    event_type      text NOT NULL,
    topic           text NOT NULL,
    -- Where a status event was read (NULL for spec events, which were never in Kafka).
    kafka_partition integer,
    kafka_offset    bigint,
    -- The event as it came, byte for byte: a spec event's JSON form; a status message's key, its
    -- headers as JSON ({"attributes": {...}, "content_type": ...}) and its value. bytea, not text:
    -- what could not be stored may hold a NUL.
    message_key     bytea,
    headers         bytea,
    payload         bytea,
    reason          text NOT NULL,
    attempts        integer NOT NULL,
    created_at      timestamptz NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX quarantine_consumer ON quarantine (consumer, id);
