-- Outcomes of consumed messages that support staff need to see beside the audit timeline:
-- ignored (acked, telemetry only), rejected (dead-lettered at once) and failed (retried, then
-- dead-lettered). One row per delivery; successes are in the event log itself.
CREATE TABLE message_outcome (
    id bigserial PRIMARY KEY,
    message_id text NOT NULL,
    queue text NOT NULL,
    event_type text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('success', 'ignored', 'rejected', 'failed')),
    name text,
    properties jsonb NOT NULL DEFAULT '{}',
    crn text,
    noms_number text,
    reason text,
    attempt integer NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_outcome_crn ON message_outcome (crn, id) WHERE crn IS NOT NULL;
CREATE INDEX message_outcome_message_id ON message_outcome (message_id);
