//! Pure domain of delius-bridge: the event-sourced aggregates, their commands, events and
//! errors, and the ports (`Services`) through which a decision reaches the outside world.
//!
//! This crate does no I/O: it must not depend on sqlx, lapin, axum or any other adapter
//! (a tidy test in `tests/tidy.rs` checks its Cargo.toml).
//!
//! # Layout
//! - [`common`]: the clock-carrying command wrapper [`Timed`], the id allocation port
//!   [`IdAllocator`] and the [`Services`] every aggregate receives.
//! - [`mod@reference`]: `ReferenceData`, one aggregate per reference-data entry (seeded codes).
//! - [`case`]: `Case`, the person with their sentences (events, disposals, requirements) and
//!   community manager, keyed by CRN.
//! - [`diary`]: `Diary`, a person's appointments (CRS sessions), keyed by CRN.
//! - [`custody`]: `Custody`, one custodial sentence: status, location, releases, recalls and
//!   licence conditions, keyed by custody id.
//! - [`pom`]: `PomAllocation`, prison offender managers, responsible officers and handover
//!   key dates of a person, keyed by CRN.
//! - [`referral`]: `Referral`, the CRS referral NSI, keyed by referral id.
//! - [`upcasters`]: the event upcasters every reader of the log must register.

pub mod case;
pub mod common;
pub mod custody;
pub mod diary;
pub mod pom;
pub mod reference;
pub mod referral;
pub mod upcasters;

pub use common::{IdAllocator, IdError, IdSequence, Services, Timed};
