//! The generator is deterministic, its seeds validate, its proportions follow the table, and
//! every message finds its person and upstream answer.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

#[test]
fn same_arguments_give_identical_output() {
    let a = Workload::new(42, 300);
    let b = Workload::new(42, 300);
    assert_eq!(a.people(), b.people());
    assert_eq!(a.seed_json(), b.seed_json());
    assert_eq!(a.messages("http://x"), b.messages("http://x"));
    assert_eq!(a.sync_setup(), b.sync_setup());
    let first: Vec<_> = a.referrals().take(500).collect();
    let second: Vec<_> = b.referrals().take(500).collect();
    assert_eq!(first, second);
    assert_ne!(Workload::new(43, 300).seed_json(), a.seed_json());
}

#[test]
fn generated_seeds_parse_and_validate() {
    let known = crate::seed::KnownCodes::from_migrations();
    for (seed, people) in [(1, 1), (7, 50), (99, 2_000)] {
        let file = Workload::new(seed, people)
            .seed_file()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        crate::seed::validate(&file, &known).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(file.cases.len(), people);
    }
}

#[test]
fn identifiers_are_unique_and_well_formed() {
    let w = Workload::new(5, 20_000);
    let crns: BTreeSet<_> = w.people().iter().map(|p| p.crn.clone()).collect();
    assert_eq!(crns.len(), 20_000);
    let noms: Vec<_> = w
        .people()
        .iter()
        .filter_map(|p| p.noms_number.clone())
        .collect();
    assert_eq!(noms.iter().collect::<BTreeSet<_>>().len(), noms.len());
    let referrals: BTreeSet<_> = w
        .referrals()
        .take(50_000)
        .map(|r| r.body["referralId"].to_string())
        .collect();
    assert_eq!(referrals.len(), 50_000, "endless referrals never repeat");
    let ids: Vec<_> = w
        .messages("http://x")
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
}

#[test]
fn message_kinds_follow_the_table() {
    let w = Workload::new(11, 20_000);
    let messages = w.messages("http://x");
    let mut counts: BTreeMap<MessageKind, usize> = BTreeMap::new();
    for m in &messages {
        *counts.entry(m.kind).or_default() += 1;
    }
    let total = messages.len() as f64;
    for (kind, weight) in MESSAGE_MIX {
        let share = *counts.get(kind).unwrap_or(&0) as f64 / total * 100.0;
        assert!(
            (share - f64::from(*weight)).abs() < 2.0,
            "{kind:?}: {share:.1}% of messages, table says {weight}%"
        );
    }
}

#[test]
fn every_detail_url_has_an_upstream_answer() {
    let w = Workload::new(3, 500);
    for m in w.messages("http://stub") {
        let body: Value = serde_json::from_str(&m.body).unwrap();
        let envelope = crate::amqp::envelope::Envelope::parse(m.body.as_bytes()).unwrap();
        assert_eq!(envelope.event_type, m.kind.event_type());
        assert_eq!(body["MessageId"], json!(m.message_id));
        let Some(url) = envelope.event.detail_url else {
            continue;
        };
        if m.kind == MessageKind::ActionPlanSubmitted || m.kind == MessageKind::ActionPlanApproved {
            continue; // the handler does not fetch action plans
        }
        let path = url.strip_prefix("http://stub").unwrap();
        assert!(w.upstream_response(path).is_some(), "no answer for {path}");
    }
    assert!(w.upstream_response("/referral/nope").is_none());
}
