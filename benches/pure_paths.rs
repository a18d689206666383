//! Criterion benches of the hot pure paths: parsing a message envelope, deciding a command
//! (aggregate `handle`), decoding a stored event, projecting it into row changes, applying
//! them to the in-memory tables, planning a seed file, and verifying a request's RS256 bearer
//! token (every sync request does). Inputs come from the demo seed, the workload generator and
//! the test keys. Run: `cargo bench --bench pure_paths`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;

use aggregates::referral::{Referral, ReferralCommand, SentenceFacts, StartReferral};
use aggregates::{Services, Timed};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use delius_bridge::amqp::envelope::Envelope;
use delius_bridge::workload::{MessageKind, Workload};
use projections::memory::MemoryTables;
use projections::{Metadata, RecordedEvent, Source};

const DEMO: &str = include_str!("../fixtures/delius/demo.json");

/// The demo seed's events, as the embedded engine records them.
fn demo_events() -> Vec<RecordedEvent> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let engine = delius_bridge::engine::Engine::memory();
        let file = delius_bridge::seed::parse(DEMO).expect("demo parses");
        delius_bridge::seed::load(&engine, &file, "bench")
            .await
            .expect("demo loads");
        let delius_bridge::engine::Backend::Memory { log, .. } = &engine.backend else {
            unreachable!("memory engine")
        };
        log.read_after(Default::default(), usize::MAX)
            .expect("events")
    })
}

/// The Referral events of one PUT referral on the embedded engine (generated workload).
fn referral_events() -> Vec<RecordedEvent> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let workload = Workload::new(1, 40);
        let engine = delius_bridge::engine::Engine::memory();
        let file = workload.seed_file().expect("workload seed parses");
        delius_bridge::seed::load(&engine, &file, "bench")
            .await
            .expect("workload seed loads");
        let request = workload.nth_referral(0).expect("a community person");
        let wire: delius_bridge::crs::wire::ReferralStarted =
            serde_json::from_value(request.body).expect("referral body");
        let metadata = Metadata {
            message_id: "bench-referral".into(),
            correlation_id: "bench-referral".into(),
            causation_id: None,
            source: Source::Http,
            actor: "bench".into(),
            received_at: chrono::Utc::now(),
        };
        delius_bridge::crs::start_referral(&engine, &request.crn, &wire, &metadata)
            .await
            .expect("referral starts");
        let delius_bridge::engine::Backend::Memory { log, .. } = &engine.backend else {
            unreachable!("memory engine")
        };
        log.read_after(Default::default(), usize::MAX)
            .expect("events")
            .into_iter()
            .filter(|e| e.aggregate_type == "Referral")
            .collect()
    })
}

fn start_referral_command() -> Timed<ReferralCommand> {
    Timed::new(
        chrono::Utc::now(),
        ReferralCommand::Start(Box::new(StartReferral {
            referral_id: uuid::Uuid::from_u128(7),
            started_at: chrono::Utc::now(),
            contract_type: "ACC".into(),
            notes: "Referral for accommodation support".into(),
            sentence: SentenceFacts {
                offender_id: 100_000,
                crn: "A000000".into(),
                event_id: 100_001,
                rar_requirement_id: Some(100_003),
            },
        })),
    )
}

fn new_paths(c: &mut Criterion) {
    let workload = Workload::new(1, 200);
    let messages = workload.messages("http://interventions");
    for kind in [MessageKind::SessionFeedback, MessageKind::PrisonerReleased] {
        let message = messages
            .iter()
            .find(|m| m.kind == kind)
            .expect("a message of the kind");
        c.bench_function(&format!("parse envelope {kind:?}"), |b| {
            b.iter(|| Envelope::parse(black_box(message.body.as_bytes())).expect("parses"))
        });
    }

    let services = Services::new(Arc::new(delius_bridge::ids::MemoryIds::default()));
    let command = start_referral_command();
    c.bench_function("handle StartReferral (Referral aggregate)", |b| {
        b.iter(|| {
            futures::executor::block_on(async {
                let mut referral = Referral::default();
                let sink = EventSink::<Referral>::default();
                referral
                    .handle(black_box(command.clone()), &services, &sink)
                    .await
                    .expect("handles");
                sink.collect().await
            })
        })
    });

    let events = referral_events();
    let started = events
        .iter()
        .find(|e| e.event_type == "ReferralStarted")
        .expect("a ReferralStarted event")
        .clone();
    let decoded = started.decode().expect("decodes");
    c.bench_function("project ReferralStarted", |b| {
        b.iter(|| projections::delius::project(black_box(&decoded)))
    });
    c.bench_function("decode + project + apply ReferralStarted to memory", |b| {
        b.iter(|| {
            let mut tables = MemoryTables::default();
            tables.apply_event(black_box(&started)).expect("applies");
            tables
        })
    });
}

fn benches(c: &mut Criterion) {
    let events = demo_events();
    let case = events
        .iter()
        .find(|e| e.event_type == "CaseBaselineRecorded")
        .expect("a case event")
        .clone();

    c.bench_function("decode CaseBaselineRecorded", |b| {
        b.iter(|| black_box(&case).decode().expect("decodes"))
    });
    let decoded = case.decode().expect("decodes");
    c.bench_function("project CaseBaselineRecorded", |b| {
        b.iter(|| projections::delius::project(black_box(&decoded)))
    });
    c.bench_function(
        &format!("apply demo log ({} events) to memory", events.len()),
        |b| {
            b.iter(|| {
                let mut tables = MemoryTables::default();
                for event in &events {
                    tables.apply_event(event).expect("applies");
                }
                tables
            })
        },
    );
    let file = delius_bridge::seed::parse(DEMO).expect("demo parses");
    let known = delius_bridge::seed::KnownCodes::from_migrations();
    c.bench_function("plan demo seed", |b| {
        b.iter(|| delius_bridge::seed::plan(black_box(&file), &known))
    });
    c.bench_function("parse demo seed", |b| {
        b.iter(|| delius_bridge::seed::parse(black_box(DEMO)).expect("parses"))
    });
}

/// Verifying the bearer token of a request: what `Auth::authorize` does for every HTTP call
/// (a token signed with the test key, verified against its public key).
fn auth_paths(c: &mut Criterion) {
    use delius_bridge::http::auth::{Auth, ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW};
    const PRIVATE_KEY: &[u8] = include_bytes!("../tests/it/keys/test-only-private.pem");
    const PUBLIC_KEY: &[u8] = include_bytes!("../tests/it/keys/test-only-public.pem");
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "user_name": "bench-user",
        "client_id": "bench-client",
        "sub": "bench-user",
        "authorities": [ROLE_PROBATION_API__REFER_AND_MONITOR__CASE_DETAIL__RW],
        "aud": "oauth2-resource",
        "exp": now + 24 * 3600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-only-key-1".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(PRIVATE_KEY).expect("private key");
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("signs");
    let auth = Auth::from_pem(PUBLIC_KEY).expect("public key");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(auth.verify(&token))
        .expect("the token verifies");
    // Every request after a token's first is answered from the verified-token cache.
    c.bench_function("verify RS256 bearer token, cached", |b| {
        b.iter(|| runtime.block_on(auth.verify(black_box(&token))))
    });
    // A token's first request checks the signature (a fresh `Auth`, made outside the timing).
    c.bench_function("verify RS256 bearer token, first use", |b| {
        b.iter_batched(
            || Auth::from_pem(PUBLIC_KEY).expect("public key"),
            |auth| runtime.block_on(auth.verify(black_box(&token))).is_ok(),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(pure_paths, benches, new_paths, auth_paths);
criterion_main!(pure_paths);
