-- Every consumer gets topics of its own, one partition each: `<prefix>.spec.<slot>` for its spec
-- events and `<prefix>.status.<slot>` for its agent's reports, so that Kafka's ACLs can confine a
-- cluster's principal to them (see maestro/transport/layout.py).
ALTER TABLE consumers ADD COLUMN status_topic text;

-- Consumers registered when every cluster had a partition of one spec topic (`<prefix>.spec`,
-- partition = slot) move to their own topics. Nothing stored is lost: the server creates the new
-- topics and the clusters' ACLs when it starts; outbox rows not yet published go to the new
-- topics (the relay reads a consumer's topic at publish time); an agent, restarted with a
-- certificate of its cluster's identity, reads its placement again and its resync request brings
-- it every bundle newer than what it holds, and it reports their status again.
UPDATE consumers
SET spec_topic = regexp_replace(spec_topic, '\.spec(\.[0-9]+)?$', '.spec') || '.' || placement_slot,
    spec_partition = 0,
    status_topic = regexp_replace(spec_topic, '\.spec(\.[0-9]+)?$', '.status') || '.' || placement_slot
WHERE spec_topic ~ '\.spec(\.[0-9]+)?$';

DO $$
DECLARE
    unplaced text;
BEGIN
    SELECT string_agg(name || ' (' || spec_topic || ')', ', ') INTO unplaced
    FROM consumers WHERE status_topic IS NULL;
    IF unplaced IS NOT NULL THEN
        RAISE EXCEPTION 'consumers with a spec topic not named <prefix>.spec cannot be given topics of their own: %', unplaced
            USING HINT = 'delete them and register them again with `fleetplane maestro consumers create` (their bundles must be deleted first)';
    END IF;
END $$;

ALTER TABLE consumers ALTER COLUMN status_topic SET NOT NULL;
ALTER TABLE consumers ADD CONSTRAINT consumers_status_topic_key UNIQUE (status_topic);
