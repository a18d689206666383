//! Criterion benches of the hot pure paths: decoding a stored event, projecting it into row
//! changes, applying them to the in-memory tables, and planning a seed file.
//! Run: `cargo bench --bench pure_paths`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use projections::memory::MemoryTables;
use projections::RecordedEvent;

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

criterion_group!(pure_paths, benches);
criterion_main!(pure_paths);
