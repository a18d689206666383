-- Replay runs (DESIGN.md §3): one row per target schema. Each batch of a rebuild commits its
-- rows and this checkpoint together, so an interrupted rebuild resumes from its last batch.
CREATE TABLE replay_run (
    target_schema    text PRIMARY KEY,
    run_id           uuid        NOT NULL UNIQUE,
    projection       text        NOT NULL,
    until            timestamptz,
    swap             boolean     NOT NULL,
    status           text        NOT NULL CHECK (status IN ('building', 'built', 'swapped', 'failed')),
    transaction_id   bigint      NOT NULL DEFAULT 0,
    global_position  bigint      NOT NULL DEFAULT 0,
    events_applied   bigint      NOT NULL DEFAULT 0,
    events_total     bigint      NOT NULL DEFAULT 0,
    resumed          integer     NOT NULL DEFAULT 0,
    requested_by     text        NOT NULL,
    error            text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);

-- Audit: the streams of a person that are not keyed by CRN. A referral names its CRN when it
-- starts; a custody names its offender id in its baseline.
CREATE INDEX events_referral_crn ON events ((payload -> 'ReferralStarted' ->> 'crn'))
    WHERE event_type = 'ReferralStarted';
CREATE INDEX events_custody_offender
    ON events ((payload -> 'CustodyBaselineRecorded' -> 'baseline' ->> 'offender_id'))
    WHERE event_type = 'CustodyBaselineRecorded';
