//! The in-memory event log of the embedded default. One mutex makes every append atomic and
//! checks the expected sequence, so two concurrent commands on one aggregate cannot both win
//! (the guarantee PostgreSQL gives through the events primary key).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Utc;
use projections::{Checkpoint, RecordedEvent};

use super::{AppendBatch, AppendError, CommandOutcome, StoreError, StoredEvent, WrittenEvent};

#[derive(Debug, Default)]
struct State {
    /// Every event in global order; position = index + 1.
    events: Vec<RecordedEvent>,
    /// Indexes into `events` per (aggregate type, id).
    streams: HashMap<(String, String), Vec<usize>>,
    /// Outcomes per (message id, aggregate type, aggregate id).
    command_log: HashMap<(String, String, String), CommandOutcome>,
    /// Counts appends: the "transaction id" of the embedded log.
    transactions: i64,
}

/// The embedded event log.
#[derive(Debug, Default)]
pub struct MemEventLog {
    state: Mutex<State>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Poisoned
}

impl MemEventLog {
    /// The stored events of one aggregate, in sequence order.
    pub fn load(
        &self,
        aggregate_type: &str,
        id: &str,
    ) -> Result<Vec<StoredEvent<serde_json::Value>>, StoreError> {
        let state = self.state.lock().map_err(poisoned)?;
        let key = (aggregate_type.to_string(), id.to_string());
        Ok(state
            .streams
            .get(&key)
            .map(|indexes| {
                indexes
                    .iter()
                    .map(|&i| {
                        let e = &state.events[i];
                        StoredEvent {
                            aggregate_id: e.aggregate_id.clone(),
                            sequence: e.sequence as usize,
                            aggregate_type: e.aggregate_type.clone(),
                            event_type: e.event_type.clone(),
                            event_version: e.event_version.clone(),
                            payload: e.payload.clone(),
                            metadata: e.metadata.clone(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The recorded outcome of a message for an aggregate, if any.
    pub fn outcome(
        &self,
        message_id: &str,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<CommandOutcome>, StoreError> {
        let state = self.state.lock().map_err(poisoned)?;
        let key = (
            message_id.to_string(),
            aggregate_type.to_string(),
            aggregate_id.to_string(),
        );
        Ok(state.command_log.get(&key).cloned())
    }

    /// Appends a command's events and its outcome atomically.
    pub fn append(&self, batch: AppendBatch<'_>) -> Result<CommandOutcome, AppendError> {
        let mut outcomes = self.append_all(vec![batch])?;
        outcomes
            .pop()
            .ok_or(AppendError::Store(StoreError::Poisoned))
    }

    /// Appends several commands atomically: every batch is checked (expected sequence,
    /// command log) before any is written, all under one lock and one "transaction id".
    pub fn append_all(
        &self,
        batches: Vec<AppendBatch<'_>>,
    ) -> Result<Vec<CommandOutcome>, AppendError> {
        let metadata = batches
            .iter()
            .map(|b| serde_json::to_value(b.metadata))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)?;
        let mut state = self.state.lock().map_err(poisoned)?;
        for batch in &batches {
            let stream_key = (
                batch.aggregate_type.to_string(),
                batch.aggregate_id.to_string(),
            );
            let current = state.streams.get(&stream_key).map_or(0, Vec::len);
            if current != batch.expected_sequence {
                return Err(AppendError::Conflict);
            }
            let log_key = (
                batch.metadata.message_id.clone(),
                batch.aggregate_type.to_string(),
                batch.aggregate_id.to_string(),
            );
            if state.command_log.contains_key(&log_key) {
                return Err(AppendError::Duplicate);
            }
        }
        state.transactions += 1;
        let transaction_id = state.transactions;
        let mut outcomes = Vec::with_capacity(batches.len());
        for (batch, metadata) in batches.into_iter().zip(metadata) {
            outcomes.push(Self::write(&mut state, batch, metadata, transaction_id));
        }
        Ok(outcomes)
    }

    fn write(
        state: &mut State,
        batch: AppendBatch<'_>,
        metadata: serde_json::Value,
        transaction_id: i64,
    ) -> CommandOutcome {
        let stream_key = (
            batch.aggregate_type.to_string(),
            batch.aggregate_id.to_string(),
        );
        let current = state.streams.get(&stream_key).map_or(0, Vec::len);
        let log_key = (
            batch.metadata.message_id.clone(),
            batch.aggregate_type.to_string(),
            batch.aggregate_id.to_string(),
        );
        let mut written = Vec::with_capacity(batch.events.len());
        for (offset, event) in batch.events.into_iter().enumerate() {
            let index = state.events.len();
            let sequence = (current + offset + 1) as i64;
            let global_position = index as i64 + 1;
            written.push(WrittenEvent {
                sequence,
                global_position,
                event_type: event.event_type.clone(),
            });
            state.events.push(RecordedEvent {
                global_position,
                transaction_id,
                aggregate_type: batch.aggregate_type.to_string(),
                aggregate_id: batch.aggregate_id.to_string(),
                sequence,
                event_type: event.event_type,
                event_version: event.event_version,
                payload: event.payload,
                metadata: metadata.clone(),
                recorded_at: Utc::now(),
            });
            state
                .streams
                .entry(stream_key.clone())
                .or_default()
                .push(index);
        }
        let outcome = CommandOutcome {
            message_id: batch.metadata.message_id.clone(),
            aggregate_type: batch.aggregate_type.to_string(),
            aggregate_id: batch.aggregate_id.to_string(),
            command_type: batch.command_type.to_string(),
            transaction_id: (!written.is_empty()).then_some(transaction_id),
            events: written,
            reply: batch.reply,
            duplicate: false,
        };
        state.command_log.insert(log_key, outcome.clone());
        outcome
    }

    /// Up to `limit` events after `after`, in global order.
    pub fn read_after(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = self.state.lock().map_err(poisoned)?;
        let start = usize::try_from(after.global_position).unwrap_or(0);
        Ok(state
            .events
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect())
    }

    /// Every event of one aggregate (audit).
    pub fn stream(&self, aggregate_type: &str, id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = self.state.lock().map_err(poisoned)?;
        let key = (aggregate_type.to_string(), id.to_string());
        Ok(state
            .streams
            .get(&key)
            .map(|indexes| indexes.iter().map(|&i| state.events[i].clone()).collect())
            .unwrap_or_default())
    }

    /// The checkpoint of the newest event (default when empty).
    pub fn head(&self) -> Checkpoint {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.events.last().map(Checkpoint::of))
            .unwrap_or_default()
    }

    /// How many events the log holds.
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.events.len()).unwrap_or(0)
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
