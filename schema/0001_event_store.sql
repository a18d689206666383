-- The event log: postgres-es's `events` and `snapshots` tables, plus the columns that give
-- the log a global order (DESIGN.md §2). postgres-es names its columns in every INSERT, so the
-- extra columns take their defaults.
CREATE TABLE events (
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    sequence         bigint CHECK (sequence >= 0) NOT NULL,
    event_type       text   NOT NULL,
    event_version    text   NOT NULL,
    payload          json   NOT NULL,
    metadata         json   NOT NULL,
    global_position  bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id   xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
-- Catch-up projectors and replay read in (transaction_id, global_position) order.
CREATE INDEX events_global_order ON events (transaction_id, global_position);
CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE INDEX events_recorded_at ON events (recorded_at);

-- Unused by design (cqrs-es 0.5 snapshots corrupt state, STACK.md pitfall 1) but kept so that
-- postgres-es's schema is complete.
CREATE TABLE snapshots (
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json   NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- One row per handled command, written in the same transaction as its events: the
-- idempotency record. The same message for the same aggregate again returns `outcome` and
-- writes nothing (one message may fan out to several aggregates, hence the composite key).
CREATE TABLE command_log (
    message_id      text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    command_type    text        NOT NULL,
    outcome         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, aggregate_type, aggregate_id)
);
CREATE INDEX command_log_aggregate ON command_log (aggregate_type, aggregate_id);

-- Where each projector has got to in the global order. Written in the same transaction as
-- the rows it projected.
CREATE TABLE projector_checkpoint (
    projector        text PRIMARY KEY,
    transaction_id   bigint      NOT NULL DEFAULT 0,
    global_position  bigint      NOT NULL DEFAULT 0,
    events_applied   bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
