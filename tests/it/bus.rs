//! The command bus: idempotent by message id, one winner under concurrency, on PostgreSQL
//! and on the embedded default alike.

use aggregates::case::{Case, CaseBaseline, CaseCommand, CaseError, Person};
use aggregates::Timed;
use chrono::{NaiveDate, Utc};
use delius_bridge::bus::BusError;
use delius_bridge::engine::Engine;
use projections::{Metadata, Source};
use sqlx::PgPool;

use crate::{engine, settle};

/// An outcome without its `duplicate` flag (a redelivery answers the first outcome, flagged).
#[derive(Debug, PartialEq)]
struct CommandOutcomeSansFlag(delius_bridge::store::CommandOutcome);

impl From<&delius_bridge::store::CommandOutcome> for CommandOutcomeSansFlag {
    fn from(outcome: &delius_bridge::store::CommandOutcome) -> Self {
        let mut outcome = outcome.clone();
        outcome.duplicate = false;
        Self(outcome)
    }
}

pub(crate) fn metadata(message_id: &str) -> Metadata {
    Metadata {
        message_id: message_id.into(),
        correlation_id: "corr".into(),
        causation_id: Some("cause".into()),
        source: Source::Http,
        actor: "tester".into(),
        received_at: Utc::now(),
    }
}

pub(crate) fn baseline(offender_id: i64, surname: &str) -> Timed<CaseCommand> {
    Timed::new(
        Utc::now(),
        CaseCommand::RecordBaseline(Box::new(CaseBaseline {
            person: Person {
                offender_id,
                crn: "X999999".into(),
                noms_number: None,
                first_name: "Sam".into(),
                second_name: None,
                surname: surname.into(),
                date_of_birth: NaiveDate::from_ymd_opt(1990, 5, 6).unwrap(),
                gender: None,
                current_tier: None,
                email: None,
                telephone: None,
                mobile: None,
                soft_deleted: false,
            },
            community_manager: None,
            events: vec![],
        })),
    )
}

async fn the_same_message_twice_writes_once(engine: Engine) {
    let first = engine
        .bus
        .execute::<Case>("X999999", baseline(1, "Jones"), &metadata("m-1"))
        .await
        .unwrap();
    // The repeat carries a different command body: the message id alone decides.
    let again = engine
        .bus
        .execute::<Case>("X999999", baseline(1, "Other"), &metadata("m-1"))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.events, again.events);
    assert_eq!(first.events.len(), 1);
    // The recorded outcome is the one the first delivery got, positions and all.
    assert!(first.transaction_id.is_some());
    assert_eq!(
        delius_bridge::store::CommandOutcome {
            duplicate: false,
            ..again.clone()
        },
        first
    );
    let (case, sequence) = engine.bus.load::<Case>("X999999").await.unwrap();
    assert_eq!(sequence, 1);
    assert_eq!(case.baseline.unwrap().person.surname, "Jones");
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn the_same_message_twice_writes_once_on_postgres(pool: PgPool) {
    the_same_message_twice_writes_once(engine(pool.clone())).await;
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM command_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 1);
}

#[tokio::test]
async fn the_same_message_twice_writes_once_embedded() {
    the_same_message_twice_writes_once(Engine::memory()).await;
}

/// Two commands that cannot both hold (a CRN moving to two different offender ids), fired
/// truly concurrently many times: exactly one wins each round.
pub(crate) async fn one_of_two_conflicting_commands_wins(engine: Engine) {
    for round in 0..20 {
        let crn = format!("R{round:06}");
        let make = |offender_id: i64| {
            let mut command = baseline(offender_id, "Race");
            let CaseCommand::RecordBaseline(b) = &mut command.command;
            b.person.crn = crn.clone();
            command
        };
        // Two first recordings of one CRN with different offender ids race: whichever
        // commits first holds the CRN, the other is decided again and rejected.
        let (meta_a, meta_b) = (metadata(&format!("{crn}-a")), metadata(&format!("{crn}-b")));
        let (a, b) = tokio::join!(
            engine.bus.execute::<Case>(&crn, make(1), &meta_a),
            engine.bus.execute::<Case>(&crn, make(2), &meta_b),
        );
        let results = [a, b];
        let won = results
            .iter()
            .filter(|r| matches!(r, Ok(o) if !o.events.is_empty()))
            .count();
        let rejected = results
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Err(BusError::Rejected(CaseError::OffenderIdChanged { .. }))
                )
            })
            .count();
        assert_eq!((won, rejected), (1, 1), "round {round}: {results:?}");
        let (_, sequence) = engine.bus.load::<Case>(&crn).await.unwrap();
        assert_eq!(
            sequence, 1,
            "round {round}: only the winner's event is stored"
        );
    }
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn one_of_two_conflicting_commands_wins_on_postgres(pool: PgPool) {
    let engine = engine(pool);
    one_of_two_conflicting_commands_wins(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_conflicting_commands_wins_embedded() {
    one_of_two_conflicting_commands_wins(Engine::memory()).await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn metadata_is_stored_with_every_event(pool: PgPool) {
    let engine = engine(pool.clone());
    engine
        .bus
        .execute::<Case>("X999999", baseline(1, "Meta"), &metadata("m-meta"))
        .await
        .unwrap();
    settle(&engine).await;
    let stored: serde_json::Value = sqlx::query_scalar("SELECT metadata::jsonb FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    insta::assert_json_snapshot!("event_metadata", stored, {".received_at" => "[received_at]"});
    engine.shutdown().await;
}

fn baseline_for(crn: &str, offender_id: i64, surname: &str) -> Timed<CaseCommand> {
    let mut command = baseline(offender_id, surname);
    let CaseCommand::RecordBaseline(b) = &mut command.command;
    b.person.crn = crn.into();
    command
}

/// A unit over two aggregates commits both or neither.
async fn a_unit_is_all_or_nothing(engine: Engine) {
    let bus = &engine.bus;
    // Both in one transaction.
    let m1 = metadata("u-1");
    let mut unit = bus.unit(&m1);
    unit.execute::<Case>("A000001", baseline_for("A000001", 1, "One"))
        .await
        .unwrap();
    unit.execute::<Case>("A000002", baseline_for("A000002", 2, "Two"))
        .await
        .unwrap();
    let outcomes = unit.commit().await.unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].transaction_id, outcomes[1].transaction_id);
    // Each outcome names its own aggregate's events, positions rising in unit order.
    for (outcome, id) in outcomes.iter().zip(["A000001", "A000002"]) {
        assert_eq!(outcome.aggregate_id, id);
        assert_eq!(outcome.events.len(), 1, "{id}");
        assert_eq!(outcome.events[0].sequence, 1, "{id}");
    }
    assert!(outcomes[0].events[0].global_position < outcomes[1].events[0].global_position);
    // What the command log recorded for each is what the commit answered.
    for outcome in &outcomes {
        let again = bus
            .execute::<Case>(
                &outcome.aggregate_id,
                baseline_for(&outcome.aggregate_id, 9, "Redelivered"),
                &m1,
            )
            .await
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(
            CommandOutcomeSansFlag::from(&again),
            CommandOutcomeSansFlag::from(outcome)
        );
    }

    // One aggregate changes between deciding and committing: nothing of the unit is written.
    let m2 = metadata("u-2");
    let mut unit = bus.unit(&m2);
    unit.execute::<Case>("A000003", baseline_for("A000003", 3, "Three"))
        .await
        .unwrap();
    unit.execute::<Case>("A000001", baseline_for("A000001", 1, "Changed"))
        .await
        .unwrap();
    bus.execute::<Case>(
        "A000001",
        baseline_for("A000001", 1, "Meanwhile"),
        &metadata("other"),
    )
    .await
    .unwrap();
    assert!(matches!(
        unit.commit().await,
        Err(delius_bridge::bus::UnitError::Conflict)
    ));
    let (untouched, sequence) = bus.load::<Case>("A000003").await.unwrap();
    assert!(
        untouched.baseline.is_none() && sequence == 0,
        "A000003 not written"
    );
    let (case, _) = bus.load::<Case>("A000001").await.unwrap();
    assert_eq!(case.baseline.unwrap().person.surname, "Meanwhile");

    // The same message again: a duplicate with the recorded reply, nothing staged.
    let mut unit = bus.unit(&m1);
    let decision = unit
        .execute::<Case>("A000002", baseline_for("A000002", 2, "Again"))
        .await
        .unwrap();
    assert!(decision.duplicate && decision.events.is_empty());
    assert!(unit.commit().await.unwrap().is_empty());

    // Two commands on one aggregate in a unit: the second sees the first's state.
    let m3 = metadata("u-3");
    let mut unit = bus.unit(&m3);
    let first = unit
        .execute::<Case>("A000004", baseline_for("A000004", 4, "First"))
        .await
        .unwrap();
    let second = unit
        .execute::<Case>("A000004", baseline_for("A000004", 4, "First"))
        .await
        .unwrap();
    assert_eq!((first.events.len(), second.events.len()), (1, 0));
    let outcomes = unit.commit().await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        outcomes[0].command_type,
        "RecordCaseBaseline+RecordCaseBaseline"
    );

    // A stream read before the unit began (as `load_for` answers it) is decided on without
    // reading it again; if it moved on meanwhile, the commit conflicts rather than writing
    // over the change.
    let m4 = metadata("u-4");
    let read_before = bus.load_for::<Case>(&m4, "A000004").await.unwrap();
    bus.execute::<Case>(
        "A000004",
        baseline_for("A000004", 4, "Meanwhile"),
        &metadata("other-4"),
    )
    .await
    .unwrap();
    let mut unit = bus.unit(&m4);
    unit.preload::<Case>("A000004", read_before);
    let decision = unit
        .execute::<Case>("A000004", baseline_for("A000004", 4, "Late"))
        .await
        .unwrap();
    assert_eq!(decision.events.len(), 1, "decided on the state read before");
    assert!(matches!(
        unit.commit().await,
        Err(delius_bridge::bus::UnitError::Conflict)
    ));
    // Read fresh, the same command commits.
    let mut unit = bus.unit(&m4);
    unit.preload::<Case>(
        "A000004",
        bus.load_for::<Case>(&m4, "A000004").await.unwrap(),
    );
    unit.execute::<Case>("A000004", baseline_for("A000004", 4, "Late"))
        .await
        .unwrap();
    assert_eq!(unit.commit().await.unwrap().len(), 1);
    let (case, _) = bus.load::<Case>("A000004").await.unwrap();
    assert_eq!(case.baseline.unwrap().person.surname, "Late");
    // A message already recorded, preloaded as such: a duplicate, nothing staged.
    let mut unit = bus.unit(&m4);
    let recorded = bus.load_for::<Case>(&m4, "A000004").await.unwrap();
    assert!(recorded.is_err(), "m4 is recorded on A000004");
    unit.preload::<Case>("A000004", recorded);
    let decision = unit
        .execute::<Case>("A000004", baseline_for("A000004", 4, "Again"))
        .await
        .unwrap();
    assert!(decision.duplicate && decision.events.is_empty());
    assert!(unit.commit().await.unwrap().is_empty());
    engine.shutdown().await;
}

#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_unit_is_all_or_nothing_on_postgres(pool: PgPool) {
    a_unit_is_all_or_nothing(engine(pool)).await;
}

#[tokio::test]
async fn a_unit_is_all_or_nothing_on_the_embedded_default() {
    a_unit_is_all_or_nothing(Engine::memory()).await;
}

/// Group commit: appends from many concurrent callers share statements (and so transaction
/// ids), yet each caller gets the answer it would get alone: new aggregates are written,
/// a race on one aggregate has one winner, concurrent redeliveries of one message write once.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn concurrent_appends_are_committed_together_each_with_its_own_answer(pool: PgPool) {
    use delius_bridge::bus::EventLog;
    use delius_bridge::store::{AppendBatch, NewEvent};

    let grouped_away = || {
        crate::grouped_away(
            "delius_bridge_appends_total",
            "delius_bridge_append_statements_total",
        )
    };
    delius_bridge::metrics::install();
    let grouped_before = grouped_away();
    let engine = engine(pool.clone());
    let EventLog::Postgres(log) = engine.bus.log().clone() else {
        panic!("a PostgreSQL engine")
    };
    // Real events to append: 40 baselines decided on the embedded engine.
    let decided = Engine::memory();
    let EventLog::Memory(memory) = decided.bus.log().clone() else {
        panic!("an embedded engine")
    };
    let mut prepared = Vec::new();
    for i in 0..40 {
        let crn = format!("G{i:06}");
        decided
            .bus
            .execute::<Case>(
                &crn,
                baseline_for(&crn, 100 + i, "Grouped"),
                &metadata(&crn),
            )
            .await
            .unwrap();
        let events: Vec<NewEvent> = memory
            .load("Case", &crn)
            .unwrap()
            .into_iter()
            .map(|e| NewEvent {
                event_type: e.event_type,
                event_version: e.event_version,
                payload: e.payload,
            })
            .collect();
        prepared.push((crn, events));
    }
    // Hold inserts into `events` back (reads go on): a committer's statement waits, and the
    // appends queued after it are grouped when the lock goes.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (crn, events) in prepared {
        let log = log.clone();
        tasks.spawn(async move {
            let meta = metadata(&crn);
            let batch = AppendBatch {
                aggregate_type: "Case",
                aggregate_id: &crn,
                expected_sequence: 0,
                events,
                metadata: &meta,
                command_type: "RecordCaseBaseline",
                reply: serde_json::Value::Null,
            };
            let mut outcomes = log.append_all(vec![batch]).await.unwrap();
            assert_eq!(outcomes.len(), 1);
            outcomes.pop().unwrap()
        });
    }
    crate::wait_for_a_lock_waiter(&pool).await;
    blocker.commit().await.unwrap();
    let mut new = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        new.push(joined.unwrap());
    }
    assert_eq!(new.len(), 40);
    for outcome in &new {
        assert_eq!(
            outcome.message_id, outcome.aggregate_id,
            "its own aggregate"
        );
        assert_eq!(outcome.events.len(), 1);
        assert_eq!(outcome.events[0].sequence, 1);
    }
    let mut positions: Vec<i64> = new.iter().map(|o| o.events[0].global_position).collect();
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(positions.len(), 40, "every event has its own position");
    let mut transactions: Vec<i64> = new.iter().filter_map(|o| o.transaction_id).collect();
    transactions.sort_unstable();
    transactions.dedup();
    assert!(
        transactions.len() < 40,
        "some appends shared a commit: {} transactions for 40 appends",
        transactions.len()
    );
    // The metrics count it: 40 appends in as many fewer statements as transactions saved.
    assert!(
        grouped_away() - grouped_before >= 40 - transactions.len() as i64,
        "appends_total - append_statements_total rose by {}",
        grouped_away() - grouped_before
    );

    // Racing commands and redeliveries, all at once through the bus: grouped or not, each
    // gets its own answer (the stale ones refused by the group statement, a redelivery's
    // recorded outcome failing it as a whole: then each is written on its own).
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let bus = engine.bus.clone();
        tasks.spawn(async move {
            let result = bus
                .execute::<Case>(
                    "RACE001",
                    baseline_for("RACE001", 200 + i, "Race"),
                    &metadata(&format!("race-{i}")),
                )
                .await;
            ("race", result)
        });
        let bus = engine.bus.clone();
        tasks.spawn(async move {
            let result = bus
                .execute::<Case>(
                    "DUP0001",
                    baseline_for("DUP0001", 300, "Dup"),
                    &metadata("dup"),
                )
                .await;
            ("dup", result)
        });
    }
    let (mut race_won, mut race_rejected) = (0, 0);
    let mut dups = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            ("race", Ok(outcome)) if outcome.events.len() == 1 => race_won += 1,
            ("race", Err(BusError::Rejected(CaseError::OffenderIdChanged { .. }))) => {
                race_rejected += 1
            }
            ("dup", result) => dups.push(result.unwrap()),
            (kind, other) => panic!("{kind}: unexpected {other:?}"),
        }
    }
    assert_eq!((race_won, race_rejected), (1, 9));
    assert_eq!(dups.iter().filter(|o| !o.duplicate).count(), 1);
    let first = dups.iter().find(|o| !o.duplicate).unwrap();
    assert!(dups
        .iter()
        .all(|o| CommandOutcomeSansFlag::from(o) == CommandOutcomeSansFlag::from(first)));
    let (events, logged): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM command_log)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((events, logged), (42, 42));
    engine.shutdown().await;
}

/// Grouped loads: stream loads from many concurrent callers share queries, yet each caller
/// gets exactly its own stream (checked against postgres-es's repository), its message's
/// recorded outcome, or nothing for an aggregate that does not exist.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn concurrent_loads_share_queries_and_each_gets_its_own_answer(pool: PgPool) {
    use cqrs_es::persist::PersistedEventRepository;
    use delius_bridge::bus::EventLog;
    use delius_bridge::store::postgres::Recorded;

    let grouped_away = || {
        crate::grouped_away(
            "delius_bridge_loads_total",
            "delius_bridge_load_queries_total",
        )
    };
    delius_bridge::metrics::install();
    let engine = engine(pool.clone());
    let EventLog::Postgres(log) = engine.bus.log().clone() else {
        panic!("a PostgreSQL engine")
    };
    let crns: Vec<String> = (0..30).map(|i| format!("L{i:06}")).collect();
    for (i, crn) in crns.iter().enumerate() {
        engine
            .bus
            .execute::<Case>(
                crn,
                baseline_for(crn, 300 + i as i64, "Loaded"),
                &metadata(crn),
            )
            .await
            .unwrap();
        if i % 2 == 0 {
            // A second event on every other stream, under another message.
            engine
                .bus
                .execute::<Case>(
                    crn,
                    baseline_for(crn, 300 + i as i64, "Renamed"),
                    &metadata(&format!("{crn}-again")),
                )
                .await
                .unwrap();
        }
    }
    let grouped_before = grouped_away();

    // Hold every read of `events` back: the loaders' first queries wait, and the loads
    // queued after them are grouped when the lock goes.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    #[derive(Debug)]
    enum Asked {
        Stream(String),
        Unrecorded(String),
        Recorded(String),
        Missing(String),
    }
    let mut tasks = tokio::task::JoinSet::new();
    for crn in &crns {
        for asked in [
            Asked::Stream(crn.clone()),
            Asked::Unrecorded(crn.clone()),
            Asked::Recorded(crn.clone()),
            Asked::Missing(format!("{crn}-none")),
        ] {
            let log = log.clone();
            tasks.spawn(async move {
                let answer = match &asked {
                    Asked::Stream(id) | Asked::Missing(id) => {
                        log.load::<Case>(id).await.map(Recorded::Events)
                    }
                    Asked::Unrecorded(id) => {
                        log.load_unless_recorded("never-sent", "Case", id).await
                    }
                    Asked::Recorded(id) => log.load_unless_recorded(id, "Case", id).await,
                };
                (asked, answer.unwrap())
            });
        }
    }
    crate::wait_for_a_lock_waiter(&pool).await;
    blocker.commit().await.unwrap();

    let repository = postgres_es::PostgresEventRepository::new(pool.clone());
    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        let (asked, answer) = joined.unwrap();
        answered += 1;
        match (&asked, answer) {
            (Asked::Stream(id) | Asked::Unrecorded(id), Recorded::Events(events)) => {
                let expected = repository.get_events::<Case>(id).await.unwrap();
                assert_eq!(events.len(), expected.len(), "{asked:?}");
                assert!(!events.is_empty(), "{asked:?}");
                for (got, want) in events.iter().zip(&expected) {
                    assert_eq!(got.aggregate_id, want.aggregate_id);
                    assert_eq!(got.aggregate_type, want.aggregate_type);
                    assert_eq!(got.sequence, want.sequence);
                    assert_eq!(got.event_type, want.event_type);
                    use projections::Json;
                    assert_eq!(got.payload.to_value().unwrap(), want.payload);
                    assert_eq!(got.metadata.to_value().unwrap(), want.metadata);
                }
            }
            (Asked::Recorded(id), Recorded::Outcome(outcome)) => {
                assert_eq!(&outcome.message_id, id);
                assert_eq!(&outcome.aggregate_id, id);
                assert_eq!(outcome.events[0].sequence, 1, "its first command's outcome");
            }
            (Asked::Missing(_), Recorded::Events(events)) => assert!(events.is_empty()),
            (asked, answer) => panic!("{asked:?} answered {answer:?}"),
        }
    }
    assert_eq!(answered, 4 * crns.len());
    let saved = grouped_away() - grouped_before;
    assert!(
        saved >= crns.len() as i64,
        "{answered} loads should share queries: loads_total - load_queries_total rose by {saved}"
    );
}

/// `execute_prepared` loads the aggregate while the command's own lookups run: with the
/// event log locked, the load waits, yet the preparation has already run; once the lock goes,
/// the command is decided on what was loaded and appended.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_prepared_command_is_looked_up_while_its_aggregate_loads(pool: PgPool) {
    let engine = std::sync::Arc::new(engine(pool.clone()));
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let (prepared, was_prepared) = tokio::sync::oneshot::channel();
    let execution = tokio::spawn({
        let engine = engine.clone();
        async move {
            let prepare = async move {
                let _ = prepared.send(());
                Ok::<_, String>(baseline(7, "Prepared"))
            };
            engine
                .bus
                .execute_prepared::<Case, _>("X999999", &metadata("prepared"), prepare)
                .await
        }
    });
    crate::wait_for_a_lock_waiter(&pool).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), was_prepared)
        .await
        .expect("prepared while the load waits for the lock")
        .unwrap();
    assert!(!execution.is_finished());
    lock.rollback().await.unwrap();
    let outcome = execution.await.unwrap().unwrap().unwrap();
    assert_eq!(outcome.events.len(), 1);
    std::sync::Arc::into_inner(engine).unwrap().shutdown().await;
}

/// A preparation that fails answers its own error and writes nothing.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_failed_preparation_writes_nothing(pool: PgPool) {
    let engine = engine(pool.clone());
    let prepare = async { Err::<Timed<CaseCommand>, _>("no such person".to_string()) };
    let answer = engine
        .bus
        .execute_prepared::<Case, _>("X999999", &metadata("failed"), prepare)
        .await;
    assert_eq!(answer.err().as_deref(), Some("no such person"));
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
    engine.shutdown().await;
}

/// A group commit with stale and doubled appends in it: each of those callers is refused
/// (a conflict, to decide again) and the rest of the group is written by the same statement,
/// where before one conflict made every append of the group commit on its own.
#[sqlx::test(migrator = "delius_bridge::engine::MIGRATOR")]
async fn a_stale_append_is_refused_and_the_rest_of_its_group_written(pool: PgPool) {
    use delius_bridge::store::postgres::PgEventLog;
    use delius_bridge::store::{AppendBatch, AppendError, NewEvent};

    let log = PgEventLog::new(pool.clone());
    let meta: Vec<Metadata> = (0..8).map(|i| metadata(&format!("m{i}"))).collect();
    let event = |n: u32| NewEvent {
        event_type: "Noted".into(),
        event_version: "1".into(),
        payload: serde_json::json!({ "n": n }),
    };
    // (stream, expected sequence, events, message m<n>) per batch.
    type Batch = (&'static str, usize, Vec<NewEvent>, usize);
    let batch = |(id, expected, events, m): &Batch| AppendBatch {
        aggregate_type: "Case",
        aggregate_id: id,
        expected_sequence: *expected,
        events: events.clone(),
        metadata: &meta[*m],
        command_type: "Note",
        reply: serde_json::Value::Null,
    };
    // Stream A already holds one event.
    let first = log
        .append(batch(&("A", 0, vec![event(0)], 0)))
        .await
        .unwrap();
    assert_eq!(first.events[0].sequence, 1);

    let callers: Vec<Vec<Batch>> = vec![
        vec![("B", 0, vec![event(1)], 1)], // fresh: written
        vec![("A", 0, vec![event(2)], 2)], // stale: refused
        vec![
            ("C", 0, vec![event(3)], 3), // fresh, but its unit is stale on A:
            ("A", 0, vec![event(3)], 3), // refused whole
        ],
        vec![("D", 0, vec![event(4), event(4)], 4)], // fresh: written
        vec![("D", 0, vec![event(5)], 5)],           // D written by caller 4 first: refused
        vec![("A", 1, vec![event(6)], 6)],           // fresh on A: written
        vec![("A", 0, vec![], 7)],                   // no events: only logged, not checked
    ];
    let answers = log
        .append_grouped(
            callers
                .iter()
                .map(|batches| batches.iter().map(batch).collect())
                .collect(),
        )
        .await;
    assert_eq!(answers.len(), 7);
    let refused: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, answer)| matches!(answer, Err(AppendError::Conflict)))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(refused, vec![2, 3, 5], "the stale and doubled callers");
    let written: Vec<_> = answers
        .into_iter()
        .filter_map(Result::ok)
        .map(|mut outcomes| {
            assert_eq!(outcomes.len(), 1);
            outcomes.pop().unwrap()
        })
        .collect();
    let sequences: Vec<(String, Vec<i64>)> = written
        .iter()
        .map(|o| {
            (
                format!("{}/{}", o.aggregate_id, o.message_id),
                o.events.iter().map(|e| e.sequence).collect(),
            )
        })
        .collect();
    assert_eq!(
        sequences,
        vec![
            ("B/m1".to_string(), vec![1]),
            ("D/m4".to_string(), vec![1, 2]),
            ("A/m6".to_string(), vec![2]),
            ("A/m7".to_string(), vec![]),
        ]
    );
    let transactions: std::collections::BTreeSet<_> =
        written.iter().filter_map(|o| o.transaction_id).collect();
    assert_eq!(
        transactions.len(),
        1,
        "one statement wrote them: {transactions:?}"
    );

    // The log holds exactly what the answers say, and nothing of the refused callers.
    let streams: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, payload::text FROM events ORDER BY aggregate_id, sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        streams,
        vec![
            ("A".to_string(), 1, r#"{"n":0}"#.to_string()),
            ("A".to_string(), 2, r#"{"n":6}"#.to_string()),
            ("B".to_string(), 1, r#"{"n":1}"#.to_string()),
            ("D".to_string(), 1, r#"{"n":4}"#.to_string()),
            ("D".to_string(), 2, r#"{"n":4}"#.to_string()),
        ]
    );
    let logged: Vec<(String, String)> = sqlx::query_as(
        "SELECT message_id, aggregate_id FROM command_log ORDER BY message_id, aggregate_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let logged: Vec<String> = logged
        .into_iter()
        .map(|(m, a)| format!("{m}/{a}"))
        .collect();
    assert_eq!(logged, vec!["m0/A", "m1/B", "m4/D", "m6/A", "m7/A"]);

    // Refused callers decide again and are written as any caller would be.
    let again = log
        .append(batch(&("D", 2, vec![event(5)], 5)))
        .await
        .unwrap();
    assert_eq!(again.events[0].sequence, 3);
}
