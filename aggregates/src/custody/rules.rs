//! The movement actions of REFERENCE.md §4.3 — Recall, Release, UpdateStatus, UpdateLocation
//! and Died — applied to one custody in the movement table's order. Each action either
//! changes the custody (events, applied at once so the next action sees them) or is ignored
//! with the live system's name (`RecallNotRequired`, `PrisonerStatusCorrect`…); ignored
//! actions are recorded together in one `MovementActionsIgnored` event for the audit.
//!
//! "Recallable" and "releasable" are judged on the custody as it was before the movement
//! (the status and location rules refer to what the movement found, not to what its own
//! recall or release just wrote). Every action ignores a movement dated after the moment the
//! bridge received it.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;

use super::movement::{movement_type, Action, Class, Direction, ECSL_CODE, HDC_CODE};
use super::{
    Custody, CustodyBaseline, CustodyError, CustodyEvent, CustodyHistory, IgnoredAction,
    Institution, Recall, RecordMovement, RejectedTransfer, Release,
};
use crate::common::{london, notes, Allocation, Contact, ContactAlert, IdSequence, Services};

/// Contact types written by movements.
pub mod contact_type {
    /// Breach / prison recall (with an alert).
    pub const RECALL: &str = "ERCL";
    /// Release from custody.
    pub const RELEASE: &str = "EREL";
    /// Change of institution.
    pub const CHANGE_OF_INSTITUTION: &str = "ETCP";
    /// Component (licence condition) terminated.
    pub const COMPONENT_TERMINATED: &str = "ETER";
    /// Component provider transfer rejected.
    pub const TRANSFER_REJECTED: &str = "ETCX";
    /// Died in custody (with an alert).
    pub const DIED: &str = "DUS3";
}

/// Custody history event types.
pub mod history_type {
    pub const STATUS_CHANGE: &str = "TSC";
    pub const LOCATION_CHANGE: &str = "CPL";
}

/// Institutions the location rules name when NOMIS gives no Delius establishment.
pub mod place {
    pub const SECURE_HOSPITAL: &str = "XXX056";
    pub const IMMIGRATION_REMOVAL_CENTRE: &str = "XXX054";
    pub const UNLAWFULLY_AT_LARGE: &str = "UATLRG";
    pub const COMMUNITY: &str = "COMMUN";
    pub const UNKNOWN: &str = "UNKNOW";
    /// Every placeholder, for adapters resolving the reference data.
    pub const ALL: &[&str] = &[
        SECURE_HOSPITAL,
        IMMIGRATION_REMOVAL_CENTRE,
        UNLAWFULLY_AT_LARGE,
        COMMUNITY,
        UNKNOWN,
    ];
}

/// Custodial status codes.
pub mod status {
    pub const SENTENCED_IN_CUSTODY: &str = "A";
    pub const RELEASED_ON_LICENCE: &str = "B";
    pub const RECALLED: &str = "C";
    pub const IN_CUSTODY: &str = "D";
    pub const IN_CUSTODY_IRC: &str = "I";
    pub const POST_SENTENCE_SUPERVISION: &str = "P";
    pub const IN_CUSTODY_ROTL: &str = "R";
    pub const TERMINATED: &str = "T";
    pub const AUTO_TERMINATED: &str = "AT";

    /// Terminated statuses: the custody is no longer an active custodial event.
    pub fn is_terminated(code: &str) -> bool {
        matches!(code, TERMINATED | AUTO_TERMINATED)
    }
}

/// Recall reason codes.
pub mod recall_reason {
    /// Notified by custodial establishment.
    pub const NOTIFIED: &str = "NN";
    /// End of temporary licence.
    pub const END_OF_TEMPORARY_LICENCE: &str = "EOTL";
    /// Transfer to secure hospital.
    pub const SECURE_HOSPITAL: &str = "TSH";
    /// Transfer to immigration removal centre.
    pub const IMMIGRATION_REMOVAL_CENTRE: &str = "IRC";
}

/// Release type codes.
pub mod release_type {
    pub const ADULT_LICENCE: &str = "ADL";
    pub const ECSL: &str = "ECSL";
    pub const HOME_DETENTION_CURFEW: &str = "HDC";
}

/// The licence-condition category that survives a recall (accredited programmes).
const ACCREDITED_PROGRAMME: &str = "LAP";
/// A disposal type that can never be released (adjournment).
const ADJOURNMENT: &str = "326";
/// The reason recorded on a pending licence-condition transfer rejected by a recall.
const TRANSFER_WITHDRAWN: &str = "TWR";

/// The paragraph an `EOTL` recall adds to the ERCL notes (CHOSEN: the live wording was not
/// retrieved).
pub const EOTL_NOTE: &str = "The offender has returned to custody at the end of a period of \
     release on temporary licence (ROTL).";

/// Everything an action reads besides the custody itself.
struct Context<'a> {
    movement: &'a RecordMovement,
    /// When the bridge received the movement: later dates are in the future.
    at: DateTime<Utc>,
    /// The custody as the movement found it.
    pre: &'a CustodyBaseline,
    class: Class,
    /// The movement's UK local date.
    date: NaiveDate,
}

enum Outcome {
    Changed(Vec<CustodyEvent>),
    Ignored(&'static str, String),
}

fn ignored(name: &'static str, detail: impl Into<String>) -> Result<Outcome, CustodyError> {
    Ok(Outcome::Ignored(name, detail.into()))
}

impl CustodyBaseline {
    /// The latest release, the one a recall attaches to.
    pub fn latest_release(&self) -> Option<&Release> {
        self.releases.last()
    }

    /// The date of the latest recall of any release.
    pub fn latest_recall_date(&self) -> Option<NaiveDate> {
        self.releases
            .iter()
            .filter_map(|r| r.recall.as_ref().map(|c| c.recall_date))
            .max()
    }

    /// Can be recalled: the latest release has no recall and the person is on licence
    /// (`B`) or on temporary licence (`R`).
    pub fn can_recall(&self) -> bool {
        self.latest_release().is_some_and(|r| r.recall.is_none())
            && matches!(
                self.custodial_status_code.as_str(),
                status::RELEASED_ON_LICENCE | status::IN_CUSTODY_ROTL
            )
    }

    /// Can be released: in custody (`A`, `C`, `D`) and not an adjournment.
    pub fn can_release(&self, disposal_type_code: &str) -> bool {
        matches!(
            self.custodial_status_code.as_str(),
            status::SENTENCED_IN_CUSTODY | status::RECALLED | status::IN_CUSTODY
        ) && disposal_type_code != ADJOURNMENT
    }
}

impl Context<'_> {
    fn in_future(&self) -> bool {
        self.movement.occurred_at > self.at
    }

    /// A recall or return dated before the latest release is out of order.
    fn before_latest_release(&self, custody: &CustodyBaseline) -> bool {
        custody
            .latest_release()
            .is_some_and(|r| self.date < r.actual_release_date)
    }

    /// Why a release on this date is invalid, if it is.
    fn invalid_release_date(&self, custody: &CustodyBaseline) -> Option<String> {
        if self.in_future() {
            return Some(self.future_detail());
        }
        if self.date < self.movement.sentence.disposal_date {
            return Some(format!(
                "release date {} is before the disposal date {}",
                self.date, self.movement.sentence.disposal_date
            ));
        }
        match custody.latest_recall_date() {
            Some(recall) if self.date < recall => Some(format!(
                "release date {} is before the latest recall {recall}",
                self.date
            )),
            _ => None,
        }
    }

    /// A release by this movement applies: the custody was releasable and the date is valid.
    fn releases(&self) -> bool {
        self.pre
            .can_release(&self.movement.sentence.disposal_type_code)
            && self.invalid_release_date(self.pre).is_none()
    }

    fn future_detail(&self) -> String {
        format!(
            "movement at {} is after it was received ({})",
            self.movement.occurred_at.to_rfc3339(),
            self.at.to_rfc3339()
        )
    }

    fn institution(&self, code: &str) -> Result<&Institution, CustodyError> {
        self.movement
            .reference
            .institution(code)
            .ok_or_else(|| CustodyError::UnknownInstitution(code.to_string()))
    }

    /// The community manager, or failing that the unallocated staff of the prison's area.
    fn allocation(
        &self,
        custody: &CustodyBaseline,
        contact_type: &str,
    ) -> Result<(Allocation, Option<i64>), CustodyError> {
        if let Some(com) = &self.movement.community_manager {
            return Ok((
                Allocation {
                    staff_code: com.staff_code.clone(),
                    team_code: com.team_code.clone(),
                    probation_area_code: com.probation_area_code.clone(),
                },
                Some(com.offender_manager_id),
            ));
        }
        let area = [
            self.movement.prison_code.as_deref(),
            custody.institution_code.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|code| self.movement.reference.institution(code))
        .find_map(|i| i.prison_area_code.clone())
        .ok_or_else(|| CustodyError::NoAllocation {
            contact_type: contact_type.to_string(),
        })?;
        let team = format!("{area}ALL");
        Ok((
            Allocation {
                staff_code: format!("{team}U"),
                team_code: team,
                probation_area_code: area,
            },
            None,
        ))
    }

    async fn contact(
        &self,
        custody: &CustodyBaseline,
        services: &Services,
        contact_type: &str,
        notes: String,
        alert: bool,
    ) -> Result<(Contact, Option<i64>), CustodyError> {
        let (allocation, manager) = self.allocation(custody, contact_type)?;
        let contact = Contact {
            alert_active: alert,
            notes: Some(notes),
            ..Contact::at(
                services.ids.next_id(IdSequence::Contact).await?,
                custody.offender_id,
                Some(custody.event_id),
                contact_type,
                self.movement.occurred_at,
                &allocation,
            )
        };
        Ok((contact, manager))
    }

    async fn alert(
        &self,
        services: &Services,
        contact: &Contact,
        manager: Option<i64>,
    ) -> Result<ContactAlert, CustodyError> {
        Ok(ContactAlert {
            contact_alert_id: services.ids.next_id(IdSequence::ContactAlert).await?,
            contact_id: contact.contact_id,
            offender_id: contact.offender_id,
            contact_type_code: contact.contact_type_code.clone(),
            offender_manager_id: manager,
            staff_code: contact.staff_code.clone(),
            team_code: contact.team_code.clone(),
        })
    }

    async fn history(
        &self,
        services: &Services,
        history_type: &str,
        detail: String,
    ) -> Result<CustodyHistory, CustodyError> {
        Ok(CustodyHistory {
            custody_history_id: services.ids.next_id(IdSequence::CustodyHistory).await?,
            custody_event_type_code: history_type.to_string(),
            detail,
            historical_date: self.date,
        })
    }
}

/// Applies `movement` to the custody: every action in order, then one event listing the
/// actions that were ignored.
pub(super) async fn record_movement(
    custody: &mut Custody,
    movement: &RecordMovement,
    at: DateTime<Utc>,
    services: &Services,
    sink: &EventSink<Custody>,
) -> Result<(), CustodyError> {
    let pre = custody.current.clone().ok_or(CustodyError::NotRecorded {
        custody_id: custody.baseline.as_ref().map_or(0, |b| b.custody_id),
    })?;
    let ctx = Context {
        movement,
        at,
        pre: &pre,
        class: Class::of(&movement.movement_type, &movement.reason_code),
        date: london::local(movement.occurred_at).date(),
    };
    let mut ignored = Vec::new();
    for &action in &movement.actions {
        let current = custody.current.clone().unwrap_or_else(|| pre.clone());
        let outcome = match action {
            Action::Recall => recall(&ctx, &current, services).await?,
            Action::Release => release(&ctx, &current, services).await?,
            Action::UpdateStatus => update_status(&ctx, &current, services).await?,
            Action::UpdateLocation => update_location(&ctx, &current, services).await?,
            Action::Died => died(&ctx, &current, services).await?,
        };
        match outcome {
            Outcome::Changed(events) => {
                for event in events {
                    sink.write(event, custody).await;
                }
            }
            Outcome::Ignored(name, detail) => ignored.push(IgnoredAction {
                action,
                name: name.to_string(),
                detail,
            }),
        }
    }
    if !ignored.is_empty() {
        let event = CustodyEvent::MovementActionsIgnored {
            custody_id: pre.custody_id,
            offender_id: pre.offender_id,
            direction: movement.direction,
            movement_type: movement.movement_type.clone(),
            reason_code: movement.reason_code.clone(),
            occurred_at: movement.occurred_at,
            ignored,
        };
        sink.write(event, custody).await;
    }
    Ok(())
}

/// The recall reason of a movement, if the movement recalls at all.
fn recall_reason(ctx: &Context<'_>, custody: &CustodyBaseline) -> Option<&'static str> {
    match ctx.movement.movement_type.as_str() {
        movement_type::ADMISSION => Some(recall_reason::NOTIFIED),
        movement_type::TEMPORARY_ABSENCE_RETURN => Some(recall_reason::END_OF_TEMPORARY_LICENCE),
        movement_type::TRANSFERRED => Some(
            if custody.custodial_status_code == status::IN_CUSTODY_ROTL {
                recall_reason::END_OF_TEMPORARY_LICENCE
            } else {
                recall_reason::NOTIFIED
            },
        ),
        movement_type::RELEASED | movement_type::RELEASED_TO_HOSPITAL => match ctx.class {
            Class::Absconded => Some(recall_reason::NOTIFIED),
            Class::Hospital => Some(recall_reason::SECURE_HOSPITAL),
            Class::ImmigrationRemovalCentre => Some(recall_reason::IMMIGRATION_REMOVAL_CENTRE),
            Class::Normal => None,
        },
        _ => None,
    }
}

async fn recall(
    ctx: &Context<'_>,
    custody: &CustodyBaseline,
    services: &Services,
) -> Result<Outcome, CustodyError> {
    let Some(latest) = custody.latest_release() else {
        return ignored("RecallNotRequired", "the custody has never been released");
    };
    if latest.recall.is_some() {
        return ignored(
            "RecallNotRequired",
            format!("release {} is already recalled", latest.release_id),
        );
    }
    if !custody.can_recall() {
        return ignored(
            "RecallNotRequired",
            format!("custodial status is {}", custody.custodial_status_code),
        );
    }
    if ctx.in_future() {
        return ignored("InvalidRecallDate", ctx.future_detail());
    }
    if ctx.date < latest.actual_release_date {
        return ignored(
            "InvalidRecallDate",
            format!(
                "recall date {} is before the latest release {}",
                ctx.date, latest.actual_release_date
            ),
        );
    }
    let Some(reason_code) = recall_reason(ctx, custody) else {
        return ignored(
            "RecallNotSupported",
            format!(
                "{} {} does not recall",
                ctx.movement.movement_type, ctx.movement.reason_code
            ),
        );
    };
    let reason = ctx
        .movement
        .reference
        .recall_reasons
        .iter()
        .find(|r| r.code == reason_code);
    let description = reason.map_or(reason_code.to_string(), |r| r.description.clone());
    let mut notes = format!("Reason for Recall: {description}");
    if reason_code == recall_reason::END_OF_TEMPORARY_LICENCE {
        notes.push_str("\n\n");
        notes.push_str(EOTL_NOTE);
    }
    let recall = Recall {
        recall_id: services.ids.next_id(IdSequence::Recall).await?,
        recall_reason_code: reason_code.to_string(),
        recall_date: ctx.date,
    };
    let (contact, manager) = ctx
        .contact(custody, services, contact_type::RECALL, notes, true)
        .await?;
    let alert = ctx.alert(services, &contact, manager).await?;
    let mut events = vec![CustodyEvent::Recalled {
        custody_id: custody.custody_id,
        offender_id: custody.offender_id,
        release_id: latest.release_id,
        recall,
        occurred_at: ctx.movement.occurred_at,
        contact,
        alert,
    }];
    if ctx.movement.direction == Direction::Received {
        let termination_reason = reason.and_then(|r| r.termination_reason_code.clone());
        for condition in custody.licence_conditions.iter().filter(|c| {
            c.termination_date.is_none() && c.main_category_code != ACCREDITED_PROGRAMME
        }) {
            let description = termination_reason.as_deref().map_or_else(
                || description.clone(),
                |code| {
                    ctx.movement
                        .reference
                        .describe("r_termination_reason", code)
                },
            );
            let (contact, _) = ctx
                .contact(
                    custody,
                    services,
                    contact_type::COMPONENT_TERMINATED,
                    format!("Termination reason: {description}"),
                    false,
                )
                .await?;
            let rejected_transfer = if condition.pending_transfer {
                let reason = ctx
                    .movement
                    .reference
                    .describe("r_transfer_reason", TRANSFER_WITHDRAWN);
                let (contact, _) = ctx
                    .contact(
                        custody,
                        services,
                        contact_type::TRANSFER_REJECTED,
                        format!("Licence condition transfer rejected\nReason: {reason}"),
                        false,
                    )
                    .await?;
                Some(RejectedTransfer {
                    status_code: "REJECTED".into(),
                    decision_code: "R".into(),
                    reason_code: TRANSFER_WITHDRAWN.into(),
                    status_date: ctx.date,
                    contact,
                })
            } else {
                None
            };
            events.push(CustodyEvent::LicenceConditionTerminated {
                custody_id: custody.custody_id,
                disposal_id: custody.disposal_id,
                lic_condition_id: condition.lic_condition_id,
                termination_date: ctx.date,
                termination_reason_code: termination_reason.clone(),
                rejected_transfer,
                contact,
            });
        }
    }
    Ok(Outcome::Changed(events))
}

async fn release(
    ctx: &Context<'_>,
    custody: &CustodyBaseline,
    services: &Services,
) -> Result<Outcome, CustodyError> {
    if ctx.movement.movement_type != movement_type::RELEASED {
        return ignored(
            "UnsupportedReleaseType",
            format!("{} is not a release", ctx.movement.movement_type),
        );
    }
    if let Some(detail) = ctx.invalid_release_date(custody) {
        return ignored("InvalidReleaseDate", detail);
    }
    if !custody.can_release(&ctx.movement.sentence.disposal_type_code) {
        return ignored(
            "UnableToRelease",
            format!("currentStatus {}", custody.custodial_status_code),
        );
    }
    let release_type = match ctx.movement.reason_code.as_str() {
        ECSL_CODE => release_type::ECSL,
        HDC_CODE => release_type::HOME_DETENTION_CURFEW,
        _ => release_type::ADULT_LICENCE,
    };
    let institution_code = ctx
        .movement
        .prison_code
        .clone()
        .or_else(|| custody.institution_code.clone())
        .unwrap_or_else(|| place::UNKNOWN.to_string());
    let probation_area_code = ctx
        .movement
        .reference
        .institution(&institution_code)
        .and_then(|i| i.probation_area_code.clone());
    let description = ctx
        .movement
        .reference
        .describe("r_release_type", release_type);
    let (contact, _) = ctx
        .contact(
            custody,
            services,
            contact_type::RELEASE,
            format!("Release Type: {description}"),
            false,
        )
        .await?;
    let first_release_date = (ctx.movement.sentence.first_release_date.is_none()
        && custody.releases.is_empty())
    .then_some(ctx.date);
    Ok(Outcome::Changed(vec![CustodyEvent::Released {
        custody_id: custody.custody_id,
        offender_id: custody.offender_id,
        event_id: custody.event_id,
        release: Release {
            release_id: services.ids.next_id(IdSequence::Release).await?,
            release_type_code: release_type.to_string(),
            actual_release_date: ctx.date,
            institution_code: Some(institution_code),
            probation_area_code,
            recall: None,
        },
        occurred_at: ctx.movement.occurred_at,
        contact,
        first_release_date,
    }]))
}

async fn update_status(
    ctx: &Context<'_>,
    custody: &CustodyBaseline,
    services: &Services,
) -> Result<Outcome, CustodyError> {
    const CORRECT: &str = "PrisonerStatusCorrect";
    let current = custody.custodial_status_code.as_str();
    let (target, detail) = match ctx.movement.direction {
        Direction::Received => {
            if matches!(
                current,
                status::IN_CUSTODY
                    | status::IN_CUSTODY_IRC
                    | status::POST_SENTENCE_SUPERVISION
                    | status::TERMINATED
                    | status::AUTO_TERMINATED
            ) {
                return ignored(CORRECT, format!("custodial status is already {current}"));
            }
            if ctx.in_future() {
                return ignored(CORRECT, ctx.future_detail());
            }
            if ctx.before_latest_release(custody) {
                return ignored(CORRECT, "the movement is before the latest release");
            }
            let detail = if ctx.pre.can_recall() {
                "Recall added in custody "
            } else {
                "In custody "
            };
            (status::IN_CUSTODY, detail)
        }
        Direction::Released => match ctx.class {
            Class::Normal => {
                if !ctx.releases() {
                    return ignored(
                        CORRECT,
                        format!("custodial status {current} cannot be released on this date"),
                    );
                }
                (status::RELEASED_ON_LICENCE, "Released on Licence")
            }
            special => {
                if ctx.in_future() {
                    return ignored(CORRECT, ctx.future_detail());
                }
                if ctx.before_latest_release(custody) {
                    return ignored(CORRECT, "the movement is before the latest release");
                }
                let target = if ctx.pre.can_recall() {
                    status::RECALLED
                } else if !status::is_terminated(current) {
                    status::IN_CUSTODY
                } else {
                    return ignored(CORRECT, format!("custodial status is {current}"));
                };
                let detail = match special {
                    Class::Hospital => "Transfer to/from Hospital",
                    Class::ImmigrationRemovalCentre => "Transfer to Immigration Removal Centre",
                    _ => "Recall added unlawfully at large ",
                };
                (target, detail)
            }
        },
    };
    if target == current {
        return ignored(CORRECT, format!("custodial status is already {current}"));
    }
    let history = ctx
        .history(services, history_type::STATUS_CHANGE, detail.to_string())
        .await?;
    Ok(Outcome::Changed(vec![
        CustodyEvent::CustodialStatusChanged {
            custody_id: custody.custody_id,
            offender_id: custody.offender_id,
            previous_status_code: current.to_string(),
            custodial_status_code: target.to_string(),
            status_change_date: ctx.date,
            history,
        },
    ]))
}

async fn update_location(
    ctx: &Context<'_>,
    custody: &CustodyBaseline,
    services: &Services,
) -> Result<Outcome, CustodyError> {
    const CORRECT: &str = "PrisonerLocationCorrect";
    let current = custody.institution_code.clone();
    let current_institution = current
        .as_deref()
        .and_then(|code| ctx.movement.reference.institution(code));
    if ctx.in_future() {
        return ignored(CORRECT, ctx.future_detail());
    }
    let target = match ctx.movement.direction {
        Direction::Received => {
            if current_institution.is_some_and(|i| {
                i.nomis_code.is_some() && i.nomis_code == ctx.movement.nomis_prison_code
            }) {
                return ignored(CORRECT, "received into the prison the custody is at");
            }
            if ctx.before_latest_release(custody) {
                return ignored(CORRECT, "the movement is before the latest release");
            }
            ctx.movement.prison_code.clone().ok_or_else(|| {
                CustodyError::UnknownInstitution(
                    ctx.movement
                        .nomis_prison_code
                        .clone()
                        .unwrap_or_else(|| "(no prison)".into()),
                )
            })?
        }
        Direction::Released => {
            if ctx.class != Class::Normal && ctx.before_latest_release(custody) {
                return ignored(CORRECT, "the movement is before the latest release");
            }
            let stay = || {
                current
                    .clone()
                    .unwrap_or_else(|| place::UNKNOWN.to_string())
            };
            match ctx.class {
                Class::Hospital if current_institution.is_some_and(|i| i.secure_hospital) => stay(),
                Class::Hospital => place::SECURE_HOSPITAL.to_string(),
                Class::ImmigrationRemovalCentre
                    if current_institution.is_some_and(|i| i.immigration_removal_centre) =>
                {
                    stay()
                }
                Class::ImmigrationRemovalCentre => place::IMMIGRATION_REMOVAL_CENTRE.to_string(),
                Class::Absconded => place::UNLAWFULLY_AT_LARGE.to_string(),
                Class::Normal if ctx.releases() => place::COMMUNITY.to_string(),
                Class::Normal => stay(),
            }
        }
    };
    if current.as_deref() == Some(target.as_str()) {
        return ignored(CORRECT, format!("institution is already {target}"));
    }
    let institution = ctx.institution(&target)?;
    let history = ctx
        .history(
            services,
            history_type::LOCATION_CHANGE,
            institution.description.clone(),
        )
        .await?;
    let contact = if ctx.movement.direction == Direction::Received || ctx.class != Class::Normal {
        let status = ctx
            .movement
            .reference
            .describe("r_custodial_status", &custody.custodial_status_code);
        let notes = format!(
            "Custodial Status: {status}\nCustodial Establishment: {}\nLocation Change Date: {}",
            institution.description,
            notes::date(ctx.movement.occurred_at)
        );
        let (contact, _) = ctx
            .contact(
                custody,
                services,
                contact_type::CHANGE_OF_INSTITUTION,
                notes,
                false,
            )
            .await?;
        Some(contact)
    } else {
        None
    };
    let pom_area_code = ctx
        .movement
        .prison_code
        .as_deref()
        .and_then(|code| ctx.movement.reference.institution(code))
        .and_then(|i| i.prison_area_code.clone());
    Ok(Outcome::Changed(vec![CustodyEvent::LocationChanged {
        custody_id: custody.custody_id,
        offender_id: custody.offender_id,
        previous_institution_code: current,
        institution_code: target,
        location_change_date: ctx.date,
        history,
        contact,
        pom_area_code,
    }]))
}

async fn died(
    ctx: &Context<'_>,
    custody: &CustodyBaseline,
    services: &Services,
) -> Result<Outcome, CustodyError> {
    if ctx.in_future() {
        return ignored("InvalidMovementDate", ctx.future_detail());
    }
    let notes = format!(
        "This information has been provided via a movement reason recorded at {} in NOMIS",
        notes::date_time(ctx.movement.occurred_at)
    );
    let (contact, manager) = ctx
        .contact(custody, services, contact_type::DIED, notes, true)
        .await?;
    let alert = ctx.alert(services, &contact, manager).await?;
    Ok(Outcome::Changed(vec![CustodyEvent::DeathRecorded {
        custody_id: custody.custody_id,
        offender_id: custody.offender_id,
        occurred_at: ctx.movement.occurred_at,
        contact,
        alert,
    }]))
}
