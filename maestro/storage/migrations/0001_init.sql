-- Maestro's schema: consumers, resource bundles with their latest status, tombstones of
-- hard-deleted bundles (so the status watch can report the deletion), and the transactional outbox.

-- Bumped on every stored status change; a watcher's resume token is a value of it.
CREATE SEQUENCE status_rev_seq AS bigint;

-- Placement slots are never reused: a new cluster must not read a deleted one's leftover events.
CREATE SEQUENCE placement_slot_seq AS integer MINVALUE 0 START 0;

CREATE TABLE consumers (
    name              text PRIMARY KEY,
    labels            jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The consumer's slot in the placement policy, and the topic partition it maps to.
    placement_slot    integer NOT NULL UNIQUE,
    spec_topic        text NOT NULL,
    spec_partition    integer NOT NULL,
    -- Which outbox relay publishes this consumer's events, until when (keeps them in order).
    relay_owner       text,
    relay_lease_until timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (spec_topic, spec_partition)
);

CREATE INDEX consumers_labels ON consumers USING gin (labels jsonb_path_ops);

CREATE TABLE resources (
    id                uuid PRIMARY KEY,
    -- No cascade: a consumer with bundles cannot be deleted.
    consumer          text NOT NULL REFERENCES consumers (name),
    source            text NOT NULL,
    version           bigint NOT NULL CHECK (version >= 1),
    -- The ManifestBundle JSON: manifests, deleteOption, manifestConfigs, executer. `json`, not
    -- `jsonb`: nothing queries inside it, and text comes back out without a conversion per row,
    -- which is most of a large list's server time.
    spec              json NOT NULL,
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    -- Soft delete: set when a source deletes; the row goes when the agent confirms (or the
    -- orphan grace runs out, see expired_deletions).
    deleted_at        timestamptz,
    status            jsonb,
    status_version    bigint,
    status_sequence   bigint,
    status_hash       text,
    status_rev        bigint,
    status_updated_at timestamptz
);

-- Keyset pages in id order, per filter.
CREATE INDEX resources_consumer_id ON resources (consumer, id);
CREATE INDEX resources_source_id ON resources (source, id);
CREATE INDEX resources_labels ON resources USING gin ((metadata -> 'labels') jsonb_path_ops);
CREATE INDEX resources_status_rev ON resources (status_rev) WHERE status_rev IS NOT NULL;
CREATE INDEX resources_deleted_at ON resources (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE resource_tombstones (
    status_rev      bigint PRIMARY KEY,
    id              uuid NOT NULL,
    consumer        text NOT NULL,
    source          text NOT NULL,
    version         bigint NOT NULL,
    metadata        jsonb NOT NULL,
    status          jsonb,
    status_version  bigint,
    status_sequence bigint,
    status_hash     text,
    deleted_at      timestamptz,
    removed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX resource_tombstones_removed_at ON resource_tombstones (removed_at);

CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    resource_id uuid NOT NULL,
    consumer    text NOT NULL REFERENCES consumers (name) ON DELETE CASCADE,
    event_type  text NOT NULL,
    -- The CloudEvent in its JSON (structured) form, published as it is.
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_consumer_id ON outbox (consumer, id);
