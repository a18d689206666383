//! Prison movements (REFERENCE.md §4.2): which actions a movement takes, as data in one
//! table ([`MOVEMENT_RULES`], the live `application-prisoner-movement.yml`), the feature flags
//! that switch rules off, and the movement classes the actions' rules refine by
//! (hospital, immigration removal centre, absconded).
//!
//! Pure: the adapter resolves a message to a [`Resolved`] list of actions with
//! [`resolve`], then gives it to every active custody of the person.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Which way the person moved (the live telemetry's `movementType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Into prison: `prison-offender-events.prisoner.received`.
    Received,
    /// Out of prison: `prison-offender-events.prisoner.released`.
    Released,
}

impl Direction {
    /// `Received` or `Released`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "Received",
            Self::Released => "Released",
        }
    }
}

/// What a movement does to a custody, run in this order of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Recall the latest release (RECALL row, ERCL contact, licence conditions).
    Recall,
    /// Release from custody (RELEASE row, EREL contact, first release date).
    Release,
    /// Change the custodial status (CUSTODY_HISTORY `TSC`).
    UpdateStatus,
    /// Change the institution (CUSTODY_HISTORY `CPL`, ETCP contact, POM auto-allocation).
    UpdateLocation,
    /// Record a death in custody (DUS3 contact with alert).
    Died,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The movement types (the message's `additionalInformation.reason`).
pub mod movement_type {
    pub const ADMISSION: &str = "ADMISSION";
    pub const RELEASED: &str = "RELEASED";
    pub const RELEASED_TO_HOSPITAL: &str = "RELEASED_TO_HOSPITAL";
    pub const TEMPORARY_ABSENCE_RETURN: &str = "TEMPORARY_ABSENCE_RETURN";
    pub const TRANSFERRED: &str = "TRANSFERRED";
}

/// The feature flags of the movement table. Every flag defaults to on (the live tests run
/// with them on); configuration switches them off.
pub mod flags {
    /// Releases to hospital recall the custody (`RELEASED_TO_HOSPITAL`, `RELEASED` HO/HP/HQ).
    pub const RELEASED_HOSPITAL: &str = "messages_released_hospital";
    /// Releases of an absconder recall the custody (`RELEASED` UAL/UAL_ECL).
    pub const RELEASED_ABSCONDED: &str = "messages_released_absconded";
    /// Every flag the table names.
    pub const ALL: &[&str] = &[RELEASED_HOSPITAL, RELEASED_ABSCONDED];
}

/// Which movement reason codes a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasons {
    Any,
    OneOf(&'static [&'static str]),
}

impl Reasons {
    fn matches(self, code: &str) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(codes) => codes.contains(&code),
        }
    }
}

/// One row of the movement table: first match wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovementRule {
    pub movement_type: &'static str,
    pub reasons: Reasons,
    /// Empty: the movement is known and deliberately does nothing (`NoActions`).
    pub actions: &'static [Action],
    /// The flag that must be on for the rule to apply.
    pub feature_flag: Option<&'static str>,
    /// With the flag off, the movement is processed as if its reason code were this one
    /// (matched again from the top) instead of being ignored.
    pub reason_override: Option<&'static str>,
}

use Action::{Died, Recall, Release, UpdateLocation, UpdateStatus};

const RETURN: &[Action] = &[Recall, UpdateStatus, UpdateLocation];
const RELEASE: &[Action] = &[Release, UpdateStatus, UpdateLocation];

/// Reason codes of releases to hospital.
pub const HOSPITAL_CODES: &[&str] = &["HO", "HP", "HQ"];
/// Reason codes of releases to an immigration removal centre (newer codes DEIRC, ECSLIRC).
pub const IRC_CODES: &[&str] = &["DD", "DE", "DL", "DEIRC", "ETR", "ECSLIRC"];
/// Reason codes of an absconder's "release" (unlawfully at large).
pub const ABSCONDED_CODES: &[&str] = &["UAL", "UAL_ECL"];
/// Reason code of a death.
pub const DIED_CODE: &str = "DEC";
/// Reason code of an end of custody supervised licence release.
pub const ECSL_CODE: &str = "ECSL";
/// Reason code of a home detention curfew release (newest design).
pub const HDC_CODE: &str = "HD";
/// Reason code of an administrative merge of NOMIS records: nothing happened to the person.
pub const MERGE_CODE: &str = "MRG";
/// Reason code of a transfer between prisons.
pub const TRANSFER_CODE: &str = "INT";

/// The movement → actions table (`application-prisoner-movement.yml`), first match wins.
pub const MOVEMENT_RULES: &[MovementRule] = &[
    rule(movement_type::ADMISSION, Reasons::Any, RETURN),
    MovementRule {
        feature_flag: Some(flags::RELEASED_HOSPITAL),
        ..rule(movement_type::RELEASED_TO_HOSPITAL, Reasons::Any, RETURN)
    },
    rule(
        movement_type::RELEASED,
        Reasons::OneOf(&[DIED_CODE]),
        &[Died],
    ),
    MovementRule {
        feature_flag: Some(flags::RELEASED_HOSPITAL),
        ..rule(
            movement_type::RELEASED,
            Reasons::OneOf(HOSPITAL_CODES),
            RETURN,
        )
    },
    rule(movement_type::RELEASED, Reasons::OneOf(IRC_CODES), RETURN),
    MovementRule {
        reason_override: Some("RO"),
        ..rule(
            movement_type::RELEASED,
            Reasons::OneOf(&[ECSL_CODE]),
            RELEASE,
        )
    },
    MovementRule {
        feature_flag: Some(flags::RELEASED_ABSCONDED),
        ..rule(
            movement_type::RELEASED,
            Reasons::OneOf(ABSCONDED_CODES),
            RETURN,
        )
    },
    rule(movement_type::RELEASED, Reasons::OneOf(&[MERGE_CODE]), &[]),
    rule(movement_type::RELEASED, Reasons::Any, RELEASE),
    rule(
        movement_type::TEMPORARY_ABSENCE_RETURN,
        Reasons::Any,
        RETURN,
    ),
    rule(
        movement_type::TRANSFERRED,
        Reasons::OneOf(&[TRANSFER_CODE]),
        RETURN,
    ),
];

const fn rule(
    movement_type: &'static str,
    reasons: Reasons,
    actions: &'static [Action],
) -> MovementRule {
    MovementRule {
        movement_type,
        reasons,
        actions,
        feature_flag: None,
        reason_override: None,
    }
}

/// The feature flags in force: every flag of [`flags::ALL`] is on unless configured off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureFlags {
    off: BTreeMap<String, bool>,
}

/// A feature-flag setting that names no flag of the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown feature flag {name:?} (known: {known})")]
pub struct UnknownFlag {
    pub name: String,
    pub known: String,
}

impl FeatureFlags {
    /// Every flag on.
    pub fn all_on() -> Self {
        Self::default()
    }

    /// Sets `name` on or off; the name must be one of [`flags::ALL`].
    pub fn set(&mut self, name: &str, on: bool) -> Result<(), UnknownFlag> {
        if !flags::ALL.contains(&name) {
            return Err(UnknownFlag {
                name: name.to_string(),
                known: flags::ALL.join(", "),
            });
        }
        self.off.insert(name.to_string(), !on);
        Ok(())
    }

    /// Whether `name` is on.
    pub fn enabled(&self, name: &str) -> bool {
        !self.off.get(name).copied().unwrap_or(false)
    }
}

/// What the table says to do with a movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub actions: Vec<Action>,
    /// The reason code the actions see (the message's, or a rule's override).
    pub reason_code: String,
}

/// Why the table gives a movement nothing to do. Each is an ignorable outcome named after
/// the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    /// No rule matches the movement type and reason.
    #[error("NoConfigForMovement")]
    NoConfigForMovement,
    /// The matching rule's feature flag is off and it has no reason override.
    #[error("FeatureFlagNotActive")]
    FeatureFlagNotActive { flag: &'static str },
    /// The movement is known and deliberately does nothing (e.g. an administrative merge).
    #[error("NoActions")]
    NoActions,
}

impl NotApplicable {
    /// The ignorable outcome's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NoConfigForMovement => "NoConfigForMovement",
            Self::FeatureFlagNotActive { .. } => "FeatureFlagNotActive",
            Self::NoActions => "NoActions",
        }
    }
}

/// The actions for a movement of `movement_type` with `reason_code`, by [`MOVEMENT_RULES`].
pub fn resolve(
    movement_type: &str,
    reason_code: &str,
    flags: &FeatureFlags,
) -> Result<Resolved, NotApplicable> {
    resolve_in(MOVEMENT_RULES, movement_type, reason_code, flags, 0)
}

fn resolve_in(
    rules: &[MovementRule],
    movement_type: &str,
    reason_code: &str,
    flags: &FeatureFlags,
    depth: u8,
) -> Result<Resolved, NotApplicable> {
    let rule = rules
        .iter()
        .find(|r| r.movement_type == movement_type && r.reasons.matches(reason_code))
        .ok_or(NotApplicable::NoConfigForMovement)?;
    if let Some(flag) = rule.feature_flag {
        if !flags.enabled(flag) {
            return match rule.reason_override {
                Some(code) if depth == 0 && code != reason_code => {
                    resolve_in(rules, movement_type, code, flags, depth + 1)
                }
                _ => Err(NotApplicable::FeatureFlagNotActive { flag }),
            };
        }
    }
    if rule.actions.is_empty() {
        return Err(NotApplicable::NoActions);
    }
    Ok(Resolved {
        actions: rule.actions.to_vec(),
        reason_code: reason_code.to_string(),
    })
}

/// The class of a movement, which refines what the actions do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Class {
    /// To or from a (secure) hospital: `RELEASED_TO_HOSPITAL`, or reason HO/HQ/HP.
    Hospital,
    /// To an immigration removal centre: DD, DE, DL, DEIRC, ETR, ECSLIRC.
    ImmigrationRemovalCentre,
    /// Unlawfully at large: UAL, UAL_ECL.
    Absconded,
    /// Anything else.
    Normal,
}

impl Class {
    /// The class of a movement.
    pub fn of(movement_type: &str, reason_code: &str) -> Self {
        if movement_type == movement_type::RELEASED_TO_HOSPITAL
            || HOSPITAL_CODES.contains(&reason_code)
        {
            Self::Hospital
        } else if IRC_CODES.contains(&reason_code) {
            Self::ImmigrationRemovalCentre
        } else if ABSCONDED_CODES.contains(&reason_code) {
            Self::Absconded
        } else {
            Self::Normal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(movement_type: &str, code: &str) -> Result<Vec<Action>, &'static str> {
        resolve(movement_type, code, &FeatureFlags::all_on())
            .map(|r| r.actions)
            .map_err(|e| e.name())
    }

    #[test]
    fn the_table_matches_the_live_configuration() {
        use movement_type::*;
        assert_eq!(
            actions(ADMISSION, "R1"),
            Ok(vec![Recall, UpdateStatus, UpdateLocation])
        );
        assert_eq!(actions(RELEASED, "DEC"), Ok(vec![Died]));
        for code in ["HO", "HP", "HQ", "DD", "DE", "DL", "ETR", "DEIRC", "UAL"] {
            assert_eq!(
                actions(RELEASED, code),
                Ok(vec![Recall, UpdateStatus, UpdateLocation]),
                "{code}"
            );
        }
        assert_eq!(
            actions(RELEASED, "ECSL"),
            Ok(vec![Release, UpdateStatus, UpdateLocation])
        );
        assert_eq!(
            actions(RELEASED, "NCS"),
            Ok(vec![Release, UpdateStatus, UpdateLocation])
        );
        assert_eq!(actions(RELEASED, "MRG"), Err("NoActions"));
        assert_eq!(
            actions(RELEASED_TO_HOSPITAL, "HQ"),
            Ok(vec![Recall, UpdateStatus, UpdateLocation])
        );
        assert_eq!(
            actions(TEMPORARY_ABSENCE_RETURN, "24"),
            Ok(vec![Recall, UpdateStatus, UpdateLocation])
        );
        assert_eq!(
            actions(TRANSFERRED, "INT"),
            Ok(vec![Recall, UpdateStatus, UpdateLocation])
        );
        assert_eq!(actions(TRANSFERRED, "TRNCRT"), Err("NoConfigForMovement"));
        assert_eq!(actions("SENT_TO_COURT", "CRT"), Err("NoConfigForMovement"));
    }

    #[test]
    fn a_flag_that_is_off_ignores_its_rules() {
        let mut flags = FeatureFlags::all_on();
        flags.set(flags::RELEASED_HOSPITAL, false).unwrap();
        assert_eq!(
            resolve(movement_type::RELEASED, "HO", &flags).map_err(|e| e.name()),
            Err("FeatureFlagNotActive")
        );
        assert_eq!(
            resolve(movement_type::RELEASED_TO_HOSPITAL, "HQ", &flags).map_err(|e| e.name()),
            Err("FeatureFlagNotActive")
        );
        // The other flag's rules still apply.
        assert!(resolve(movement_type::RELEASED, "UAL", &flags).is_ok());
        flags.set(flags::RELEASED_ABSCONDED, false).unwrap();
        assert_eq!(
            resolve(movement_type::RELEASED, "UAL_ECL", &flags).map_err(|e| e.name()),
            Err("FeatureFlagNotActive")
        );
        assert!(flags.set("messages_unknown", true).is_err());
    }

    #[test]
    fn an_override_re_matches_with_its_code() {
        const RULES: &[MovementRule] = &[
            MovementRule {
                feature_flag: Some(flags::RELEASED_HOSPITAL),
                reason_override: Some("XX"),
                ..rule(movement_type::RELEASED, Reasons::OneOf(&["HO"]), &[Recall])
            },
            rule(movement_type::RELEASED, Reasons::Any, &[Release]),
        ];
        let mut flags = FeatureFlags::all_on();
        assert_eq!(
            resolve_in(RULES, movement_type::RELEASED, "HO", &flags, 0)
                .unwrap()
                .actions,
            vec![Recall]
        );
        flags.set(flags::RELEASED_HOSPITAL, false).unwrap();
        let resolved = resolve_in(RULES, movement_type::RELEASED, "HO", &flags, 0).unwrap();
        assert_eq!(resolved.actions, vec![Release]);
        assert_eq!(resolved.reason_code, "XX");
    }

    #[test]
    fn classes() {
        assert_eq!(
            Class::of(movement_type::RELEASED_TO_HOSPITAL, "X"),
            Class::Hospital
        );
        assert_eq!(Class::of(movement_type::RELEASED, "HP"), Class::Hospital);
        assert_eq!(
            Class::of(movement_type::RELEASED, "ECSLIRC"),
            Class::ImmigrationRemovalCentre
        );
        assert_eq!(Class::of(movement_type::RELEASED, "UAL"), Class::Absconded);
        assert_eq!(Class::of(movement_type::RELEASED, "NCS"), Class::Normal);
    }
}
