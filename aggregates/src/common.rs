//! What every aggregate shares: commands carry the time they were received ([`Timed`]), and
//! Delius ids are allocated through the [`IdAllocator`] port while a command is decided, so
//! that the id is recorded in the event and a replay never renumbers Delius.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A command together with the moment the bridge received it. Decisions read the time from
/// here, never from the wall clock, so replays and tests are deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timed<C> {
    /// When the input that produced this command was received (`received_at` metadata).
    pub at: DateTime<Utc>,
    /// The command itself.
    pub command: C,
}

impl<C> Timed<C> {
    /// Wraps `command` with the time it was received.
    pub fn new(at: DateTime<Utc>, command: C) -> Self {
        Self { at, command }
    }
}

/// The Delius id sequences (schema `delius`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSequence {
    Offender,
    Event,
    Disposal,
    Requirement,
    Custody,
    Contact,
    Nsi,
    NsiManager,
    NsiStatusHistory,
    Enforcement,
    Release,
    Recall,
    CustodyHistory,
    PrisonOffenderManager,
    ResponsibleOfficer,
    OffenderManager,
    KeyDate,
    ContactAlert,
    LicenceCondition,
    Staff,
}

impl IdSequence {
    /// Every sequence, for allocators that keep one counter each.
    pub const ALL: [IdSequence; 20] = [
        Self::Offender,
        Self::Event,
        Self::Disposal,
        Self::Requirement,
        Self::Custody,
        Self::Contact,
        Self::Nsi,
        Self::NsiManager,
        Self::NsiStatusHistory,
        Self::Enforcement,
        Self::Release,
        Self::Recall,
        Self::CustodyHistory,
        Self::PrisonOffenderManager,
        Self::ResponsibleOfficer,
        Self::OffenderManager,
        Self::KeyDate,
        Self::ContactAlert,
        Self::LicenceCondition,
        Self::Staff,
    ];

    /// The PostgreSQL sequence behind this id, schema-qualified.
    pub fn sequence_name(self) -> &'static str {
        match self {
            Self::Offender => "delius.offender_id_seq",
            Self::Event => "delius.event_id_seq",
            Self::Disposal => "delius.disposal_id_seq",
            Self::Requirement => "delius.rqmnt_id_seq",
            Self::Custody => "delius.custody_id_seq",
            Self::Contact => "delius.contact_id_seq",
            Self::Nsi => "delius.nsi_id_seq",
            Self::NsiManager => "delius.nsi_manager_id_seq",
            Self::NsiStatusHistory => "delius.nsi_status_history_id_seq",
            Self::Enforcement => "delius.enforcement_id_seq",
            Self::Release => "delius.release_id_seq",
            Self::Recall => "delius.recall_id_seq",
            Self::CustodyHistory => "delius.custody_history_id_seq",
            Self::PrisonOffenderManager => "delius.prison_offender_manager_id_seq",
            Self::ResponsibleOfficer => "delius.responsible_officer_id_seq",
            Self::OffenderManager => "delius.offender_manager_id_seq",
            Self::KeyDate => "delius.key_date_id_seq",
            Self::ContactAlert => "delius.contact_alert_id_seq",
            Self::LicenceCondition => "delius.lic_condition_id_seq",
            Self::Staff => "delius.staff_id_seq",
        }
    }
}

/// The first id a sequence hands out; seeded baseline ids must be below it.
pub const FIRST_ALLOCATED_ID: i64 = 10_000_000;

/// An id could not be allocated (the database behind the allocator failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError(pub String);

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id allocation failed: {}", self.0)
    }
}

impl std::error::Error for IdError {}

/// A boxed, sendable future: the port is object-safe so one allocator serves every aggregate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Port: allocates Delius ids when a command is decided. Implemented by a PostgreSQL sequence
/// allocator and an in-memory one in the `delius-bridge` crate.
pub trait IdAllocator: Send + Sync {
    /// The next id of `sequence`.
    fn next_id(&self, sequence: IdSequence) -> BoxFuture<'_, Result<i64, IdError>>;
}

/// Services given to every aggregate by the command bus.
#[derive(Clone)]
pub struct Services {
    /// Delius id allocation.
    pub ids: Arc<dyn IdAllocator>,
}

impl Services {
    /// Services around the given id allocator.
    pub fn new(ids: Arc<dyn IdAllocator>) -> Self {
        Self { ids }
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// A deterministic allocator for tests: every sequence counts up from [`FIRST_ALLOCATED_ID`].
#[derive(Debug, Default)]
pub struct CountingIds {
    counters: std::sync::Mutex<std::collections::BTreeMap<IdSequence, i64>>,
}

impl IdAllocator for CountingIds {
    fn next_id(&self, sequence: IdSequence) -> BoxFuture<'_, Result<i64, IdError>> {
        let next = match self.counters.lock() {
            Ok(mut counters) => {
                let counter = counters.entry(sequence).or_insert(FIRST_ALLOCATED_ID - 1);
                *counter += 1;
                Ok(*counter)
            }
            Err(_) => Err(IdError("counter lock poisoned".into())),
        };
        Box::pin(async move { next })
    }
}

/// Delius keeps contact dates and times as UK local time. The UK rule since 1996: British
/// Summer Time (UTC+1) from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
/// Sunday of October; Greenwich Mean Time otherwise.
pub mod london {
    use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc, Weekday};

    fn last_sunday(year: i32, month: u32) -> NaiveDate {
        let first_of_next = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)
        }
        .unwrap_or(NaiveDate::MIN);
        let mut day = first_of_next - Duration::days(1);
        while day.weekday() != Weekday::Sun {
            day -= Duration::days(1);
        }
        day
    }

    /// Whether `at` falls in British Summer Time.
    pub fn is_summer_time(at: DateTime<Utc>) -> bool {
        let year = at.year();
        let start = last_sunday(year, 3)
            .and_hms_opt(1, 0, 0)
            .map(|t| t.and_utc());
        let end = last_sunday(year, 10)
            .and_hms_opt(1, 0, 0)
            .map(|t| t.and_utc());
        matches!((start, end), (Some(start), Some(end)) if at >= start && at < end)
    }

    /// The UK local date and time of `at`, to the second (Delius keeps no fractions).
    pub fn local(at: DateTime<Utc>) -> NaiveDateTime {
        let offset = if is_summer_time(at) { 1 } else { 0 };
        let local = (at + Duration::hours(offset)).naive_utc();
        local.with_nanosecond(0).unwrap_or(local)
    }

    /// The instant of a UK local date and time (Europe/London). In the autumn hour that
    /// happens twice the first (summer-time) instant is taken; a time in the spring gap is
    /// read as GMT.
    pub fn to_utc(local: NaiveDateTime) -> DateTime<Utc> {
        let summer = (local - Duration::hours(1)).and_utc();
        if is_summer_time(summer) {
            summer
        } else {
            local.and_utc()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use chrono::TimeZone;

        #[test]
        fn local_times_convert_back() {
            let utc = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
            for at in [
                utc(2023, 7, 20, 12, 24),
                utc(2023, 1, 5, 9, 0),
                utc(2024, 3, 31, 1, 0),
                // The hour after the autumn change (not the repeated one).
                utc(2024, 10, 27, 2, 0),
            ] {
                assert_eq!(to_utc(local(at)), at, "{at}");
            }
            // 2024-10-27 01:30 local happens twice: the summer-time one comes first.
            let twice = NaiveDate::from_ymd_opt(2024, 10, 27)
                .unwrap()
                .and_hms_opt(1, 30, 0)
                .unwrap();
            assert_eq!(to_utc(twice), utc(2024, 10, 27, 0, 30));
        }

        #[test]
        fn switches_at_one_in_the_morning_utc_on_the_last_sundays() {
            let utc = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
            // 2024: BST from 31 March 01:00 UTC to 27 October 01:00 UTC.
            assert!(!is_summer_time(utc(2024, 3, 31, 0, 59)));
            assert!(is_summer_time(utc(2024, 3, 31, 1, 0)));
            assert!(is_summer_time(utc(2024, 10, 27, 0, 59)));
            assert!(!is_summer_time(utc(2024, 10, 27, 1, 0)));
            assert_eq!(
                local(utc(2023, 2, 14, 15, 0)).to_string(),
                "2023-02-14 15:00:00"
            );
            assert_eq!(
                local(utc(2023, 6, 5, 14, 6)).to_string(),
                "2023-06-05 15:06:00"
            );
            assert_eq!(
                local(utc(2023, 6, 5, 23, 30)).to_string(),
                "2023-06-06 00:30:00"
            );
        }
    }
}

/// A Delius contact (`delius.contact`) as written when it is created. Later changes (outcome,
/// notes, enforcement) are separate events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub contact_id: i64,
    pub offender_id: i64,
    pub event_id: Option<i64>,
    pub nsi_id: Option<i64>,
    pub requirement_id: Option<i64>,
    pub contact_type_code: String,
    pub contact_date: chrono::NaiveDate,
    pub start_time: Option<chrono::NaiveTime>,
    pub end_time: Option<chrono::NaiveTime>,
    pub staff_code: String,
    pub team_code: String,
    pub probation_area_code: String,
    pub office_location_code: Option<String>,
    pub rar_activity: Option<bool>,
    pub alert_active: bool,
    pub linked_contact_id: Option<i64>,
    pub external_reference: Option<String>,
    pub notes: Option<String>,
}

impl Contact {
    /// A contact of the person at `at` (its UK local date and start time) allocated to
    /// `allocation`, linked to nothing but the event, no notes, no alert.
    pub fn at(
        contact_id: i64,
        offender_id: i64,
        event_id: Option<i64>,
        contact_type: &str,
        at: chrono::DateTime<chrono::Utc>,
        allocation: &Allocation,
    ) -> Self {
        let local = london::local(at);
        Self {
            contact_id,
            offender_id,
            event_id,
            nsi_id: None,
            requirement_id: None,
            contact_type_code: contact_type.to_string(),
            contact_date: local.date(),
            start_time: Some(local.time()),
            end_time: None,
            staff_code: allocation.staff_code.clone(),
            team_code: allocation.team_code.clone(),
            probation_area_code: allocation.probation_area_code.clone(),
            office_location_code: None,
            rar_activity: None,
            alert_active: false,
            linked_contact_id: None,
            external_reference: None,
            notes: None,
        }
    }
}

/// The CRS provider, team and staff every Refer and Monitor NSI and appointment is allocated to.
pub mod crs {
    pub const PROVIDER: &str = "CRS";
    pub const TEAM: &str = "CRSUAT";
    pub const STAFF: &str = "CRSUATU";
    /// The service's Delius user (audit columns).
    pub const USER: &str = "ReferAndMonitorAndDelius";
}

/// A `delius.contact_alert` row: the contact shows as an alert to the person's community
/// manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactAlert {
    pub contact_alert_id: i64,
    pub contact_id: i64,
    pub offender_id: i64,
    pub contact_type_code: String,
    pub offender_manager_id: Option<i64>,
    pub staff_code: String,
    pub team_code: String,
}

/// Who a contact is allocated to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub staff_code: String,
    pub team_code: String,
    pub probation_area_code: String,
}

/// Delius's date and time formats in contact notes (UK local time).
pub mod notes {
    use chrono::{DateTime, Utc};

    /// `dd/MM/yyyy`.
    pub fn date(at: DateTime<Utc>) -> String {
        super::london::local(at).format("%d/%m/%Y").to_string()
    }

    /// `dd/MM/yyyy HH:mm:ss`.
    pub fn date_time(at: DateTime<Utc>) -> String {
        super::london::local(at)
            .format("%d/%m/%Y %H:%M:%S")
            .to_string()
    }
}
