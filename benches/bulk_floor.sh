#!/usr/bin/env bash
# The floor under any design of the async and sync paths on this machine: the machine CPU
# PostgreSQL spends to store rows of the log and of the Delius projection in bulk, with no
# service in front of it — rows copied server-side (`INSERT … SELECT` from a staging table,
# no client, no network, no parsing of a wire format) in transactions of 500 rows, each
# committed (synchronous_commit on, as the service runs). Printed as busy CPU microseconds
# (every core, from /proc/stat) per row. What the service adds to a message is in the e2e
# bench's `cpu:` lines; BENCHMARKS.md adds the two up.
#
#   cargo bench --bench e2e -- --figures replay --keep-replay-db   # prints the kept URL
#   benches/bulk_floor.sh "postgres://postgres@127.0.0.1:5432/bench_replay_…" [rounds]
#
# It needs the kept replay database (its generated log and the `bench_replay` schema the
# last rebuild left), adds staging tables and, between rounds, deletes what it inserted.
# Variants: `events` as the service has it (its six indexes), `events` with its primary key
# only (a lean log), `command_log` (the idempotency record, two indexes) and
# `bench_replay.contact` (the largest Delius table, four indexes).
set -euo pipefail
url=${1:?usage: bulk_floor.sh DATABASE_URL [rounds]}
rounds=${2:-3}
rows=100000
chunk=500
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
shift_id=1000000000

psql <<SQL
DROP TABLE IF EXISTS floor_events, floor_command, floor_contact, floor_lean;
-- The newest events, on streams of their own (the id suffixed), numbered into chunks.
CREATE TABLE floor_events AS
  SELECT (row_number() OVER (ORDER BY global_position) - 1) / $chunk AS chunk, *
  FROM (SELECT global_position, aggregate_type, aggregate_id || '-floor' AS aggregate_id,
               sequence, event_type, event_version, payload, metadata
        FROM events ORDER BY global_position DESC LIMIT $rows) newest;
CREATE INDEX ON floor_events (chunk);
-- A command-log row per event (the service writes one per command: ~1 per 2.7 events).
CREATE TABLE floor_command AS
  SELECT chunk, md5(global_position::text) || '-floor' AS message_id, aggregate_type,
         aggregate_id, 'RecordMovement' AS command_type,
         jsonb_build_object('message_id', md5(global_position::text), 'aggregate_type',
           aggregate_type, 'aggregate_id', aggregate_id, 'command_type', 'RecordMovement',
           'events', jsonb_build_array(jsonb_build_object('sequence', sequence,
             'global_position', global_position, 'event_type', event_type)),
           'transaction_id', 123456789, 'reply', NULL, 'duplicate', false) AS outcome,
         metadata::jsonb AS metadata
  FROM floor_events;
CREATE INDEX ON floor_command (chunk);
-- The newest contacts of the last rebuild, under ids of their own.
CREATE TABLE floor_contact AS
  SELECT (row_number() OVER (ORDER BY contact_id) - 1) / $chunk AS chunk, *
  FROM (SELECT * FROM bench_replay.contact ORDER BY contact_id DESC LIMIT $rows) newest;
UPDATE floor_contact SET contact_id = contact_id + $shift_id;
CREATE INDEX ON floor_contact (chunk);
-- The lean log: the same columns and identity, the primary key only, the whole log in it.
CREATE TABLE floor_lean (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED);
ALTER TABLE floor_lean ADD PRIMARY KEY (aggregate_type, aggregate_id, sequence);
INSERT INTO floor_lean (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
  SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata
  FROM events ORDER BY global_position;
SQL
chunks=$(( (rows + chunk - 1) / chunk ))
contact_columns=$(command psql -X -At "$url" -c "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'bench_replay' AND table_name = 'contact'")

# One statement per chunk, each its own transaction (psql autocommits).
script() {
  local target=$1 columns=$2 source=$3 select=$4
  for n in $(seq 0 $((chunks - 1))); do
    echo "INSERT INTO $target ($columns) SELECT $select FROM $source WHERE chunk = $n;"
  done
}
event_columns="aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata"
script events "$event_columns" floor_events "$event_columns" > /tmp/floor-events.sql
script floor_lean "$event_columns" floor_events "$event_columns" > /tmp/floor-lean.sql
command_columns="message_id, aggregate_type, aggregate_id, command_type, outcome, metadata"
script command_log "$command_columns" floor_command "$command_columns" > /tmp/floor-command_log.sql
script bench_replay.contact "$contact_columns" floor_contact "$contact_columns" > /tmp/floor-contact.sql

clean() {
  psql -c "DELETE FROM events WHERE aggregate_id LIKE '%-floor'" \
       -c "DELETE FROM floor_lean WHERE aggregate_id LIKE '%-floor'" \
       -c "DELETE FROM command_log WHERE message_id LIKE '%-floor'" \
       -c "DELETE FROM bench_replay.contact WHERE contact_id > $shift_id" \
       -c "VACUUM ANALYZE events" -c "VACUUM ANALYZE floor_lean" -c "VACUUM ANALYZE command_log" \
       -c "VACUUM ANALYZE bench_replay.contact" -c "CHECKPOINT"
}
for round in $(seq 1 "$rounds"); do
  for variant in events lean command_log contact; do
    clean
    before=$(busy); started=$(date +%s.%N)
    psql -f "/tmp/floor-$variant.sql" > /dev/null
    after=$(busy); ended=$(date +%s.%N)
    awk -v b="$((after - before))" -v r="$rows" -v s="$started" -v e="$ended" -v v="$variant" -v k="$round" \
      'BEGIN { printf "round %d %-11s %5.1f µs of CPU per row (%d rows in %.2f s, %d per transaction)\n", k, v, b * 10000 / r, r, e - s, '"$chunk"' }'
  done
done
clean
psql -c "DROP TABLE floor_events, floor_command, floor_contact, floor_lean"
