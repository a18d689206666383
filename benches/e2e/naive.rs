//! The naive baseline of the async figure: what the cqrs-es book does per message —
//! `CqrsFramework::execute_with_metadata` on a postgres-es `PostgresEventRepository` (event
//! store: load the stream, handle, one transaction with an INSERT per event) followed by a
//! postgres-es `GenericQuery` view (load the view row, update it, write it back), then the
//! ack (an `AggregateConflict`, two consumers on one person, is retried). Same messages, transport, prefetch and consumers as the service.
//!
//! What it does *not* do is the domain work of the real path: the aggregate here records the
//! message on the person's stream (id = CRN or NOMS number) and the view counts them. No
//! lookups, no upstream calls, no Delius ids, no Delius rows. So it is a lower bound on the
//! naive path's cost, and the real path's speedup over it is understated.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::GenericQuery;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, Query, View};
use delius_bridge::amqp::envelope::Envelope;
use delius_bridge::workload::Message;
use postgres_es::PostgresViewRepository;
use serde::{Deserialize, Serialize};

use crate::setup::Database;

/// The person's message stream.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NaiveCase {
    messages: u64,
}

#[derive(Debug)]
pub struct Record {
    event_type: String,
    message: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NaiveEvent {
    MessageRecorded {
        event_type: String,
        message: serde_json::Value,
    },
}

impl DomainEvent for NaiveEvent {
    fn event_type(&self) -> String {
        "MessageRecorded".into()
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

impl Aggregate for NaiveCase {
    const TYPE: &'static str = "NaiveCase";
    type Command = Record;
    type Event = NaiveEvent;
    type Error = Never;
    type Services = ();

    async fn handle(
        &mut self,
        command: Record,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Never> {
        sink.write(
            NaiveEvent::MessageRecorded {
                event_type: command.event_type,
                message: command.message,
            },
            self,
        )
        .await;
        Ok(())
    }

    fn apply(&mut self, _event: NaiveEvent) {
        self.messages += 1;
    }
}

/// The view: messages per person and the last event type.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct NaiveCaseView {
    messages: u64,
    last_event_type: String,
}

impl View<NaiveCase> for NaiveCaseView {
    fn update(&mut self, event: &EventEnvelope<NaiveCase>) {
        let NaiveEvent::MessageRecorded { event_type, .. } = &event.payload;
        self.messages += 1;
        self.last_event_type = event_type.clone();
    }
}

/// postgres-es's `db/init.sql`.
const DDL: &[&str] = &[
    "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
     event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, \
     PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
    "CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
     last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, \
     current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL, \
     PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
    "CREATE TABLE naive_case_view (view_id text NOT NULL, \
     version bigint CHECK (version >= 0) NOT NULL, payload json NOT NULL, PRIMARY KEY (view_id))",
];

pub async fn run(
    messages: &[Message],
    prefetch: u16,
    consumers: usize,
) -> anyhow::Result<(f64, crate::cpu::Usage)> {
    let db = Database::create("naive", 16).await?;
    for ddl in DDL {
        sqlx::query(ddl).execute(&db.pool).await?;
    }
    let view = Arc::new(PostgresViewRepository::<NaiveCaseView, NaiveCase>::new(
        "naive_case_view",
        db.pool.clone(),
    ));
    let mut query = GenericQuery::new(view);
    query.use_error_handler(Box::new(|error| eprintln!("naive view error: {error}")));
    let queries: Vec<Box<dyn Query<NaiveCase>>> = vec![Box::new(query)];
    let cqrs = Arc::new(postgres_es::postgres_cqrs(db.pool.clone(), queries, ()));
    let rate = crate::lapin_loop::run("naive", messages, prefetch, consumers, move |body| {
        let cqrs = cqrs.clone();
        async move {
            let envelope = Envelope::parse(&body)?;
            let id = envelope
                .event
                .crn()
                .map(str::to_string)
                .or_else(|| {
                    envelope
                        .event
                        .additional_information
                        .get("nomsNumber")
                        .and_then(|n| n.as_str())
                        .map(str::to_string)
                })
                .context("no person in the message")?;
            let metadata = HashMap::from([("message_id".to_string(), envelope.message_id.clone())]);
            let message = serde_json::to_value(&envelope.event)?;
            // Two consumers may hold messages of one person: retry the conflict, as the
            // cqrs-es maintainers advise.
            for attempt in 1.. {
                let record = Record {
                    event_type: envelope.event_type.clone(),
                    message: message.clone(),
                };
                match cqrs
                    .execute_with_metadata(&id, record, metadata.clone())
                    .await
                {
                    Ok(()) => break,
                    Err(AggregateError::AggregateConflict) if attempt < 20 => {
                        tokio::time::sleep(std::time::Duration::from_millis(attempt)).await
                    }
                    Err(e) => anyhow::bail!("execute: {e}"),
                }
            }
            Ok(())
        }
    })
    .await;
    db.drop_now().await;
    rate
}
