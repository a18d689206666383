//! Deterministic generator of realistic large workloads, shared by the end-to-end benchmark
//! (`benches/e2e`) and the replay benchmark: N people as a seed file the seed loader accepts,
//! the synchronous Refer and Monitor requests about them, and the asynchronous domain messages
//! about them in live-like proportions, with the interventions-service answers their
//! `detailUrl`s need.
//!
//! Everything is a pure function of `(seed, people)` ([`rng::SplitMix64`], no clock, no I/O):
//! the same arguments give byte-identical seeds, requests and messages.
//!
//! # Proportions
//! One table, [`MESSAGE_MIX`], sets the share of each kind of asynchronous message. Each person
//! gets one [`Profile`] and the profile decides their messages, so the profile weights
//! ([`profile_mix`]: InPrison 30, OnLicence 30, Delivery 4, Ended 8) are derived from the message table: a prison person is released (one
//! message), a person on licence is recalled (one message), an R&M delivery case gets
//! [`SESSIONS_PER_DELIVERY`] session feedbacks and an action plan submitted and approved, and an
//! R&M ended case gets one referral-ended message.
//!
//! The weights are an estimate of the relative daily volumes of the live integrations (prison
//! movements dominate; among R&M messages session feedback dominates), not a measurement of
//! live traffic. Manage POM Cases messages (allocation, handover) have weight 0: their queue
//! is declared but has no handler in this build; raise the weight when it has.
//!
//! # What this module must not know
//! How the inputs are sent (HTTP, AMQP) or where they go: it produces JSON bodies and paths.

pub mod log;
pub mod rng;

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::seed::{SeedError, SeedFile};
use rng::SplitMix64;

/// The demo baseline, whose reference data (areas, prisons, teams, staff, CRS offices) every
/// generated seed reuses.
const DEMO_SEED: &str = include_str!("../../fixtures/delius/demo.json");

/// Appointments (and so session feedback messages) per R&M delivery case.
pub const SESSIONS_PER_DELIVERY: usize = 6;

/// Ids of person `i` are `ID_BASE + i * ID_STRIDE + k` (k < `ID_STRIDE`): below the bridge's
/// own sequences (10 000 000) and above the demo's ids.
const ID_BASE: i64 = 100_000;
const ID_STRIDE: i64 = 20;
/// The most people one workload can hold with distinct ids below 10 000 000.
pub const MAX_PEOPLE: usize = ((10_000_000 - ID_BASE) / ID_STRIDE) as usize;

/// The kinds of asynchronous message the generator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// PCSTD `prison-offender-events.prisoner.released` (RELEASED, NCS).
    PrisonerReleased,
    /// PCSTD `prison-offender-events.prisoner.received` (ADMISSION, R1 recall).
    PrisonerReceived,
    /// R&M `intervention.session-appointment.session-feedback-submitted`.
    SessionFeedback,
    /// R&M `intervention.action-plan.submitted`.
    ActionPlanSubmitted,
    /// R&M `intervention.action-plan.approved`.
    ActionPlanApproved,
    /// R&M `intervention.referral.ended` (PREMATURELY_ENDED).
    ReferralEnded,
    /// Manage POM Cases allocation / handover: no handler yet, weight 0.
    PomAllocation,
}

impl MessageKind {
    /// The event type (routing key and `eventType`).
    pub fn event_type(self) -> &'static str {
        match self {
            Self::PrisonerReleased => "prison-offender-events.prisoner.released",
            Self::PrisonerReceived => "prison-offender-events.prisoner.received",
            Self::SessionFeedback => "intervention.session-appointment.session-feedback-submitted",
            Self::ActionPlanSubmitted => "intervention.action-plan.submitted",
            Self::ActionPlanApproved => "intervention.action-plan.approved",
            Self::ReferralEnded => "intervention.referral.ended",
            Self::PomAllocation => "offender-management.allocation.changed",
        }
    }
}

/// The share of each message kind in the asynchronous stream, per 100 messages.
///
/// | kind | weight | source fixture |
/// |---|---|---|
/// | prisoner released | 30 | `prison-custody-status-to-delius/messages/prisoner-released.json` |
/// | prisoner received (recall) | 30 | `…/prisoner-received.json` |
/// | session feedback | 24 | `refer-and-monitor-and-delius/messages/session-appointment-feedback-submitted-compliant.json` |
/// | action plan submitted | 4 | `…/action-plan-submitted.json` |
/// | action plan approved | 4 | `…/action-plan-approved.json` |
/// | referral ended | 8 | `…/referral-prematurely-ended.json` |
/// | POM allocation / handover | 0 | no handler in this build |
pub const MESSAGE_MIX: &[(MessageKind, u32)] = &[
    (MessageKind::PrisonerReleased, 30),
    (MessageKind::PrisonerReceived, 30),
    (MessageKind::SessionFeedback, 24),
    (MessageKind::ActionPlanSubmitted, 4),
    (MessageKind::ActionPlanApproved, 4),
    (MessageKind::ReferralEnded, 8),
    (MessageKind::PomAllocation, 0),
];

/// What Delius knows of a person and which messages they will get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Custodial sentence, in prison (status D): one release.
    InPrison,
    /// Custodial sentence, released on licence (status B, no recall): one recall.
    OnLicence,
    /// Community sentence with a RAR: an R&M referral with sessions and an action plan.
    Delivery,
    /// Community sentence with a RAR: an R&M referral that ends prematurely.
    Ended,
}

fn weight(kind: MessageKind) -> u32 {
    MESSAGE_MIX
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, w)| *w)
}

/// Profile weights derived from [`MESSAGE_MIX`]: people per 100 messages.
pub fn profile_mix() -> [(Profile, u32); 4] {
    // A delivery case yields SESSIONS_PER_DELIVERY feedbacks and one of each action plan
    // message: its weight is the larger of the shares those kinds ask for.
    let sessions = weight(MessageKind::SessionFeedback).div_ceil(SESSIONS_PER_DELIVERY as u32);
    let plans =
        weight(MessageKind::ActionPlanSubmitted).max(weight(MessageKind::ActionPlanApproved));
    [
        (Profile::InPrison, weight(MessageKind::PrisonerReleased)),
        (Profile::OnLicence, weight(MessageKind::PrisonerReceived)),
        (Profile::Delivery, sessions.max(plans)),
        (Profile::Ended, weight(MessageKind::ReferralEnded)),
    ]
}

/// One generated person.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Position in the workload (0-based).
    pub index: usize,
    pub profile: Profile,
    pub offender_id: i64,
    pub crn: String,
    /// Set for the custodial profiles.
    pub noms_number: Option<String>,
    /// The conviction event (`sentenceId` of R&M referrals).
    pub event_id: i64,
    /// The prison (NOMIS code) the person is in or was released from.
    pub prison: &'static str,
    /// The person's R&M referral (community profiles).
    pub referral_id: Uuid,
    /// Interventions-service appointment ids (delivery profile).
    pub appointment_ids: Vec<Uuid>,
    /// Day offset of the person's dates (spreads dates over a few years).
    day: i64,
}

/// A synchronous request: `PUT path` with `body` (JSON), about `crn`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRequest {
    pub crn: String,
    pub path: String,
    pub body: Value,
}

/// An asynchronous message: the SNS notification `body` to publish with routing key
/// `kind.event_type()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: MessageKind,
    /// The SNS `MessageId` (the bridge's message id).
    pub message_id: String,
    pub crn: String,
    pub body: String,
}

/// A deterministic workload of `people` people.
#[derive(Debug, Clone)]
pub struct Workload {
    seed: u64,
    people: Vec<Person>,
    by_referral: HashMap<Uuid, usize>,
    /// Indexes of the R&M profiles' people.
    community: Vec<usize>,
}

const FIRST_NAMES: &[&str] = &[
    "Alex", "Bethan", "Callum", "Dylan", "Ellie", "Farah", "Gareth", "Hana", "Imran", "Jade",
    "Kieran", "Lucy", "Mohammed", "Niamh", "Owen", "Priya", "Rhys", "Sophie", "Tariq", "Zoe",
];
const SURNAMES: &[&str] = &[
    "Ahmed", "Brown", "Clarke", "Davies", "Evans", "Fletcher", "Green", "Hughes", "Iqbal", "Jones",
    "Khan", "Lewis", "Morgan", "Nolan", "Owens", "Patel", "Roberts", "Smith", "Taylor", "Williams",
];
/// Prisons of the demo reference data that have an `{area}ALL` team with its `ALLU` staff.
const PRISONS: &[&str] = &["WSI", "SWI", "BIR", "MDI"];
/// Community managers of the demo reference data: (staff, team, area).
const MANAGERS: &[(&str, &str, &str)] = &[
    ("N07A001", "N07T01", "N07"),
    ("N07A002", "N07T02", "N07"),
    ("N03A001", "N03T01", "N03"),
];
const CONTRACT_TYPES: &[&str] = &["ACC", "ETE", "PWB", "WOS", "WSM"];
const OFFICES: &[&str] = &["CRS0001", "CRS0149"];

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2021, 1, 4).unwrap_or_default()
}

fn at(date: NaiveDate, hour: u32) -> NaiveDateTime {
    date.and_hms_opt(hour, 0, 0).unwrap_or_default()
}

fn rfc3339(t: NaiveDateTime) -> String {
    format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S%.3f"))
}

impl Workload {
    /// `people` people drawn with `seed` (at most [`MAX_PEOPLE`]).
    pub fn new(seed: u64, people: usize) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mix = profile_mix();
        let weights: Vec<u32> = mix.iter().map(|(_, w)| *w).collect();
        let people = (0..people.min(MAX_PEOPLE))
            .map(|index| {
                let profile = mix[rng.weighted(&weights)].0;
                let base = ID_BASE + index as i64 * ID_STRIDE;
                let custodial = matches!(profile, Profile::InPrison | Profile::OnLicence);
                let referral_id = rng.uuid();
                let appointment_ids = match profile {
                    Profile::Delivery => (0..SESSIONS_PER_DELIVERY).map(|_| rng.uuid()).collect(),
                    _ => Vec::new(),
                };
                Person {
                    index,
                    profile,
                    offender_id: base,
                    crn: crn(index),
                    noms_number: custodial.then(|| noms(index)),
                    event_id: base + 1,
                    prison: PRISONS[rng.below(PRISONS.len() as u64) as usize],
                    referral_id,
                    appointment_ids,
                    day: rng.below(3 * 365) as i64,
                }
            })
            .collect::<Vec<Person>>();
        let by_referral = people.iter().map(|p| (p.referral_id, p.index)).collect();
        let community = people
            .iter()
            .filter(|p| matches!(p.profile, Profile::Delivery | Profile::Ended))
            .map(|p| p.index)
            .collect();
        Self {
            seed,
            people,
            by_referral,
            community,
        }
    }

    /// The people at positions `range` (clamped), as a workload of their own: the same
    /// people, ids, requests and messages as in `self`, only fewer.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Workload {
        let end = range.end.min(self.people.len());
        let people: Vec<Person> = self.people[range.start.min(end)..end].to_vec();
        let by_referral = people
            .iter()
            .enumerate()
            .map(|(position, p)| (p.referral_id, position))
            .collect();
        let community = people
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.profile, Profile::Delivery | Profile::Ended))
            .map(|(position, _)| position)
            .collect();
        Workload {
            seed: self.seed,
            people,
            by_referral,
            community,
        }
    }

    /// The seed this workload was drawn with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The people.
    pub fn people(&self) -> &[Person] {
        &self.people
    }

    /// The seed file (JSON) of every person, with the demo's reference data.
    pub fn seed_json(&self) -> Value {
        let reference_data = serde_json::from_str::<Value>(DEMO_SEED)
            .ok()
            .and_then(|demo| demo.get("reference_data").cloned())
            .unwrap_or_else(|| json!({}));
        json!({
            "description": format!("generated workload: seed {}, {} people", self.seed, self.people.len()),
            "reference_data": reference_data,
            "cases": self.people.iter().map(|p| self.case(p)).collect::<Vec<_>>(),
        })
    }

    /// The seed file, parsed by the seed loader.
    pub fn seed_file(&self) -> Result<SeedFile, SeedError> {
        crate::seed::parse(&self.seed_json().to_string())
    }

    fn case(&self, p: &Person) -> Value {
        let base = p.offender_id;
        let mut rng =
            SplitMix64::new(self.seed ^ (base as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
        let surname = SURNAMES[rng.below(SURNAMES.len() as u64) as usize];
        let dob = NaiveDate::from_ymd_opt(
            1960 + rng.below(40) as i32,
            1 + rng.below(12) as u32,
            1 + rng.below(28) as u32,
        )
        .unwrap_or_default();
        let (staff, team, area) = MANAGERS[rng.below(MANAGERS.len() as u64) as usize];
        let sentenced = epoch() + Duration::days(p.day);
        let mut person = json!({
            "offender_id": base,
            "crn": p.crn,
            "first_name": first,
            "surname": surname,
            "date_of_birth": dob.to_string(),
            "gender": if rng.below(10) < 8 { "Male" } else { "Female" },
        });
        if let Some(noms) = &p.noms_number {
            person["noms_number"] = json!(noms);
        }
        let institution = format!("{}HMP", p.prison);
        let disposal = match p.profile {
            Profile::InPrison => json!({
                "disposal_id": base + 2,
                "disposal_type_code": "SC",
                "disposal_date": sentenced.to_string(),
                "custody": {
                    "custody_id": base + 4,
                    "custodial_status_code": "D",
                    "institution_code": institution,
                    "status_change_date": sentenced.to_string(),
                    "location_change_date": sentenced.to_string(),
                },
            }),
            Profile::OnLicence => {
                let released = sentenced + Duration::days(120);
                json!({
                    "disposal_id": base + 2,
                    "disposal_type_code": "SC",
                    "disposal_date": sentenced.to_string(),
                    "custody": {
                        "custody_id": base + 4,
                        "custodial_status_code": "B",
                        "institution_code": "COMMUN",
                        "status_change_date": released.to_string(),
                        "location_change_date": released.to_string(),
                        "releases": [{
                            "release_id": base + 5,
                            "release_type_code": "ADL",
                            "actual_release_date": released.to_string(),
                            "institution_code": institution,
                            "probation_area_code": p.prison,
                        }],
                    },
                })
            }
            Profile::Delivery | Profile::Ended => json!({
                "disposal_id": base + 2,
                "disposal_type_code": "ORA",
                "disposal_date": sentenced.to_string(),
                "expected_end_date": (sentenced + Duration::days(730)).to_string(),
                "requirements": [{"requirement_id": base + 3, "main_category_code": "F"}],
            }),
        };
        let mut event = json!({
            "event_id": p.event_id,
            "event_number": "1",
            "referral_date": sentenced.to_string(),
            "conviction_date": sentenced.to_string(),
            "disposal": disposal,
        });
        if p.profile == Profile::OnLicence {
            event["first_release_date"] = json!((sentenced + Duration::days(120)).to_string());
        }
        json!({
            "person": person,
            "community_manager": {
                "offender_manager_id": base + 6,
                "staff_code": staff,
                "team_code": team,
                "probation_area_code": area,
                "allocation_date": sentenced.to_string(),
            },
            "events": [event],
        })
    }

    /// People of the R&M profiles (who can take referrals).
    pub fn community(&self) -> impl Iterator<Item = &Person> + Clone {
        self.community.iter().map(|i| &self.people[*i])
    }

    /// `PUT /probation-case/{crn}/referrals` for referral number `k` of `person` (k = 0 is the
    /// person's own [`Person::referral_id`]; others are further referrals on the same
    /// sentence, as a person with several interventions has).
    pub fn referral(&self, person: &Person, k: u64) -> SyncRequest {
        let referral_id = if k == 0 {
            person.referral_id
        } else {
            SplitMix64::new(self.seed ^ ((person.offender_id as u64) << 24) ^ k).uuid()
        };
        let contract = CONTRACT_TYPES[(person.index + k as usize) % CONTRACT_TYPES.len()];
        let started = at(epoch() + Duration::days(person.day + 30), 9);
        SyncRequest {
            crn: person.crn.clone(),
            path: format!("/probation-case/{}/referrals", person.crn),
            body: json!({
                "referralId": referral_id,
                "startedAt": rfc3339(started),
                "contractType": contract,
                "sentenceId": person.event_id,
                "notes": format!("Referral for {contract} support"),
            }),
        }
    }

    /// Referral PUT number `i` of an endless stream of distinct referrals: round robin over
    /// the community people, each round a further referral per person (`k` ≥ 1, so never the
    /// person's own referral of [`Workload::sync_setup`]). `None` without community people.
    pub fn nth_referral(&self, i: u64) -> Option<SyncRequest> {
        let n = self.community.len() as u64;
        let index = *self.community.get(i.checked_rem(n)? as usize)?;
        Some(self.referral(&self.people[index], 1 + i / n))
    }

    /// [`Workload::nth_referral`] for i = 0, 1, 2…
    pub fn referrals(&self) -> impl Iterator<Item = SyncRequest> + '_ {
        (0u64..).map_while(|i| self.nth_referral(i))
    }

    /// The synchronous set-up of the R&M cases the asynchronous messages need, in order:
    /// each community person's referral, then each delivery case's appointments (far in the
    /// future, one a day, so none clashes and none is "in the past").
    pub fn sync_setup(&self) -> Vec<SyncRequest> {
        let mut requests: Vec<SyncRequest> =
            self.community().map(|p| self.referral(p, 0)).collect();
        for p in self.community() {
            for (j, id) in p.appointment_ids.iter().enumerate() {
                let start = at(
                    NaiveDate::from_ymd_opt(2099, 1, 1).unwrap_or_default()
                        + Duration::days(j as i64),
                    10,
                );
                requests.push(SyncRequest {
                    crn: p.crn.clone(),
                    path: format!(
                        "/probation-case/{}/referrals/{}/appointments",
                        p.crn, p.referral_id
                    ),
                    body: json!({
                        "id": id,
                        "referralId": p.referral_id,
                        "referralReference": reference(p),
                        "start": rfc3339(start),
                        "durationInMinutes": 60,
                        "notes": format!("Session {}", j + 1),
                        "officeLocationCode": OFFICES[j % OFFICES.len()],
                        "countsTowardsRar": true,
                    }),
                });
            }
        }
        requests
    }

    /// Every asynchronous message of the workload, interleaved at random (deterministically).
    /// `detail_base` is the interventions service's base URL the `detailUrl`s point at.
    pub fn messages(&self, detail_base: &str) -> Vec<Message> {
        let mut messages = Vec::new();
        for p in &self.people {
            match p.profile {
                Profile::InPrison => messages.push(self.movement(p, MessageKind::PrisonerReleased)),
                Profile::OnLicence => {
                    messages.push(self.movement(p, MessageKind::PrisonerReceived))
                }
                Profile::Delivery => {
                    messages.push(self.action_plan(
                        p,
                        MessageKind::ActionPlanSubmitted,
                        detail_base,
                    ));
                    messages.push(self.action_plan(
                        p,
                        MessageKind::ActionPlanApproved,
                        detail_base,
                    ));
                    for (j, id) in p.appointment_ids.iter().enumerate() {
                        messages.push(self.feedback(p, j, *id, detail_base));
                    }
                }
                Profile::Ended => messages.push(self.ended(p, detail_base)),
            }
        }
        SplitMix64::new(self.seed.rotate_left(17)).shuffle(&mut messages);
        messages
    }

    fn message_id(&self, p: &Person, kind: MessageKind, n: usize) -> String {
        let name = format!("workload:{}:{}:{:?}:{n}", self.seed, p.index, kind);
        Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
    }

    fn sns(
        &self,
        p: &Person,
        kind: MessageKind,
        n: usize,
        message: Value,
        at: NaiveDateTime,
    ) -> Message {
        let message_id = self.message_id(p, kind, n);
        let body = json!({
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": "arn:aws:sns:eu-west-2:000000000000:hmpps-domain-events",
            "Message": message.to_string(),
            "Timestamp": rfc3339(at),
            "SignatureVersion": "1",
            "MessageAttributes": {
                "eventType": {"Type": "String", "Value": kind.event_type()},
            },
        });
        Message {
            kind,
            message_id,
            crn: p.crn.clone(),
            body: body.to_string(),
        }
    }

    fn movement(&self, p: &Person, kind: MessageKind) -> Message {
        let noms = p.noms_number.clone().unwrap_or_default();
        let occurred = at(epoch() + Duration::days(p.day + 400), 8);
        let info = match kind {
            MessageKind::PrisonerReleased => json!({
                "nomsNumber": noms,
                "reason": "RELEASED",
                "details": "Movement reason code NCS",
                "nomisMovementReasonCode": "NCS",
                "currentLocation": "OUTSIDE_PRISON",
                "prisonId": p.prison,
                "currentPrisonStatus": "NOT_UNDER_PRISON_CARE",
            }),
            _ => json!({
                "nomsNumber": noms,
                "reason": "ADMISSION",
                "probableCause": "RECALL",
                "source": "PRISON",
                "nomisMovementReasonCode": "R1",
                "details": "ACTIVE IN:ADM-L",
                "currentLocation": "IN_PRISON",
                "prisonId": p.prison,
                "currentPrisonStatus": "UNDER_PRISON_CARE",
            }),
        };
        let message = json!({
            "eventType": kind.event_type(),
            "additionalInformation": info,
            "version": 1,
            "occurredAt": rfc3339(occurred),
            "publishedAt": rfc3339(occurred + Duration::minutes(5)),
            "description": "A prisoner movement",
            "personReference": {"identifiers": [{"type": "NOMS", "value": noms}]},
        });
        self.sns(p, kind, 0, message, occurred + Duration::minutes(5))
    }

    fn action_plan(&self, p: &Person, kind: MessageKind, base: &str) -> Message {
        let occurred = at(epoch() + Duration::days(p.day + 45), 15);
        let action_plan = Uuid::new_v5(&p.referral_id, b"action-plan");
        let by = if kind == MessageKind::ActionPlanApproved {
            "approvedBy"
        } else {
            "submittedBy"
        };
        let message = json!({
            "eventType": kind.event_type(),
            "description": "An action plan notification",
            "detailUrl": format!("{base}/action-plan/{action_plan}"),
            "occurredAt": rfc3339(occurred),
            "additionalInformation": {
                "actionPlanId": action_plan,
                by: "AUTOMATEDTESTUSER",
                "referralId": p.referral_id,
                "referralReference": reference(p),
                "contractTypeName": "Accommodation",
                "primeProviderName": "Seetec Business Technology Centre Limited",
                "actionPlanProbationUserUrl": format!("https://interventions.example/probation-practitioner/referrals/{}/action-plan", p.referral_id),
            },
            "personReference": {"identifiers": [{"type": "CRN", "value": p.crn}]},
            "version": 1,
        });
        self.sns(p, kind, 0, message, occurred)
    }

    fn feedback(&self, p: &Person, j: usize, appointment: Uuid, base: &str) -> Message {
        let occurred = at(epoch() + Duration::days(p.day + 60 + j as i64), 16);
        let message = json!({
            "eventType": MessageKind::SessionFeedback.event_type(),
            "version": 1,
            "description": "Session feedback submitted for a session appointment",
            "detailUrl": format!("{base}/referral/{}/delivery-session-appointments/{appointment}", p.referral_id),
            "occurredAt": rfc3339(occurred),
            "additionalInformation": {
                "referralReference": reference(p),
                "contractTypeName": "Accommodation Referral",
                "primeProviderName": "ProviderName",
                "referralProbationUserURL": "https://ui/url",
                "referralId": p.referral_id,
            },
            "personReference": {"identifiers": [{"type": "CRN", "value": p.crn}]},
        });
        self.sns(p, MessageKind::SessionFeedback, j, message, occurred)
    }

    fn ended(&self, p: &Person, base: &str) -> Message {
        let occurred = at(epoch() + Duration::days(p.day + 90), 15);
        let message = json!({
            "eventType": MessageKind::ReferralEnded.event_type(),
            "version": 1,
            "description": "Referral Ended",
            "detailUrl": format!("{base}/sent-referral/{}", p.referral_id),
            "occurredAt": rfc3339(occurred),
            "additionalInformation": {
                "deliveryState": "PREMATURELY_ENDED",
                "referralId": p.referral_id,
                "referralURN": format!("urn:hmpps:interventions-referral:{}", p.referral_id),
                "referralProbationUserURL": format!("https://interventions.example/probation-practitioner/referrals/{}/details", p.referral_id),
            },
            "personReference": {"identifiers": [{"type": "CRN", "value": p.crn}]},
        });
        self.sns(p, MessageKind::ReferralEnded, 0, message, occurred)
    }

    /// The interventions service's answer to `GET path` (a path of a generated `detailUrl`),
    /// or `None` for a path it does not know.
    pub fn upstream_response(&self, path: &str) -> Option<Value> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["referral", referral, "delivery-session-appointments", appointment] => {
                let referral = Uuid::parse_str(referral).ok()?;
                let appointment = Uuid::parse_str(appointment).ok()?;
                let p = self.by_referral(referral)?;
                let j = p.appointment_ids.iter().position(|a| *a == appointment)?;
                let start = at(
                    NaiveDate::from_ymd_opt(2099, 1, 1)? + Duration::days(j as i64),
                    10,
                );
                // Two in three attended; the rest did not (a failure to comply).
                let attended = if (p.index + j) % 3 == 2 { "no" } else { "yes" };
                Some(json!({
                    "id": appointment,
                    "sessionNumber": j + 1,
                    "appointmentTime": rfc3339(start),
                    "durationInMinutes": 60,
                    "appointmentDeliveryType": "IN_PERSON_MEETING_PROBATION_OFFICE",
                    "sessionType": "ONE_TO_ONE",
                    "oldAppointments": [],
                    "appointmentFeedback": {
                        "attendanceFeedback": {
                            "attended": attended,
                            "didSessionHappen": attended == "yes",
                            "submittedAt": rfc3339(start + Duration::hours(2)),
                        },
                        "sessionFeedback": {"notifyProbationPractitionerOfBehaviour": false},
                        "submitted": true,
                    },
                }))
            }
            ["sent-referral", referral] => {
                let referral = Uuid::parse_str(referral).ok()?;
                let p = self.by_referral(referral)?;
                let concluded = at(epoch() + Duration::days(p.day + 89), 14);
                Some(json!({
                    "id": referral,
                    "referenceNumber": reference(p),
                    "referral": {
                        "id": referral,
                        "serviceProvider": {"name": "Special Provider", "id": Uuid::new_v5(&referral, b"provider")},
                        "contractTypeName": "Accommodation",
                    },
                    "endRequestedAt": rfc3339(concluded - Duration::days(1)),
                    "concludedAt": rfc3339(concluded),
                    "endOfServiceReport": {"submittedAt": rfc3339(concluded)},
                }))
            }
            _ => None,
        }
    }

    fn by_referral(&self, referral: Uuid) -> Option<&Person> {
        self.by_referral.get(&referral).map(|i| &self.people[*i])
    }
}

/// The CRS referral reference of a person's referral (`FE` + 5 digits).
fn reference(p: &Person) -> String {
    format!("FE{:05}", p.index % 100_000)
}

/// CRN of person `i`: a letter and six digits, unique for `i` < 26 000 000.
fn crn(i: usize) -> String {
    let letter = (b'A' + ((i / 1_000_000) % 26) as u8) as char;
    format!("{letter}{:06}", i % 1_000_000)
}

/// NOMS number of person `i`: `G`, four digits, two letters; unique for `i` < 6 760 000.
fn noms(i: usize) -> String {
    let high = i / 10_000;
    let a = (b'A' + ((high / 26) % 26) as u8) as char;
    let b = (b'A' + (high % 26) as u8) as char;
    format!("G{:04}{a}{b}", i % 10_000)
}

#[cfg(test)]
mod tests;
