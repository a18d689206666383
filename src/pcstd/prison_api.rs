//! The Prison API calls of a prison identifier event (REFERENCE.md §4.1, newest design): the
//! person's booking and their latest movement, turned into the [`Movement`] the movement
//! table understands. Wire types are the Prison API's (unknown fields ignored).

use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;

use aggregates::common::london;
use aggregates::custody::movement::{movement_type, Direction, HOSPITAL_CODES};

use super::Movement;
use crate::upstream::{UpstreamClient, UpstreamError};

/// `GET /api/bookings/offenderNo/{noms}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub booking_id: i64,
    #[serde(default)]
    pub active_flag: bool,
    #[serde(default)]
    pub agency_id: Option<String>,
    /// `IN`, `OUT` or `TRN`.
    #[serde(default)]
    pub in_out_status: Option<String>,
    #[serde(default)]
    pub last_movement_type_code: Option<String>,
    #[serde(default)]
    pub last_movement_reason_code: Option<String>,
}

/// One entry of `POST /api/movements/offenders?latestOnly=true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrisonMovement {
    #[serde(default)]
    pub from_agency: Option<String>,
    #[serde(default)]
    pub to_agency: Option<String>,
    #[serde(default)]
    pub movement_type: Option<String>,
    #[serde(default)]
    pub movement_reason_code: Option<String>,
    pub movement_date: NaiveDate,
    pub movement_time: NaiveTime,
}

/// Why no movement came of the Prison API's answers.
#[derive(Debug)]
pub enum LatestMovement {
    /// A live ignorable outcome (`BookingInactive`, `BeingTransferred`, `NoMovementInNomis`,
    /// `UnableToCalculateMovementType`).
    Ignored { name: &'static str, detail: String },
    /// The booking and the movement disagree: NOMIS is mid-update, retry.
    Inconsistent(String),
    /// The call failed.
    Upstream(UpstreamError),
}

impl From<UpstreamError> for LatestMovement {
    fn from(error: UpstreamError) -> Self {
        Self::Upstream(error)
    }
}

/// The person's latest movement according to the Prison API at `base`.
pub async fn latest_movement(
    upstream: &UpstreamClient,
    base: &str,
    noms: &str,
) -> Result<Movement, LatestMovement> {
    let base = base.trim_end_matches('/');
    let booking: Booking = upstream
        .get_json(&format!(
            "{base}/api/bookings/offenderNo/{noms}?basicInfo=false&extraInfo=true"
        ))
        .await?;
    let movements: Vec<PrisonMovement> = upstream
        .post_json(
            &format!("{base}/api/movements/offenders?latestOnly=true"),
            &[noms],
        )
        .await?;
    movement_of(noms, &booking, movements.into_iter().next())
}

/// The movement of `booking` and its latest `movement` (pure).
pub fn movement_of(
    noms: &str,
    booking: &Booking,
    movement: Option<PrisonMovement>,
) -> Result<Movement, LatestMovement> {
    let ignored = |name, detail: String| Err(LatestMovement::Ignored { name, detail });
    if !booking.active_flag && booking.last_movement_type_code.as_deref() != Some("REL") {
        return ignored(
            "BookingInactive",
            format!("booking {} is not active", booking.booking_id),
        );
    }
    if booking.in_out_status.as_deref() == Some("TRN") {
        return ignored(
            "BeingTransferred",
            format!("booking {} is being transferred", booking.booking_id),
        );
    }
    let Some(movement) = movement else {
        return ignored("NoMovementInNomis", format!("no movement for {noms}"));
    };
    if let (Some(booked), Some(moved)) = (&booking.last_movement_type_code, &movement.movement_type)
    {
        if booked != moved {
            return Err(LatestMovement::Inconsistent(format!(
                "booking {} says the last movement was {booked}, the movements say {moved}",
                booking.booking_id
            )));
        }
    }
    let reason_code = movement
        .movement_reason_code
        .clone()
        .or_else(|| booking.last_movement_reason_code.clone())
        .unwrap_or_default();
    if let (Some(booked), Some(moved)) = (
        &booking.last_movement_reason_code,
        &movement.movement_reason_code,
    ) {
        if booked != moved {
            return Err(LatestMovement::Inconsistent(format!(
                "booking {} says the last movement reason was {booked}, the movements say {moved}",
                booking.booking_id
            )));
        }
    }
    let kind = movement
        .movement_type
        .clone()
        .or_else(|| booking.last_movement_type_code.clone())
        .unwrap_or_default();
    let inward = booking.in_out_status.as_deref() != Some("OUT");
    let (direction, movement_type) = match kind.as_str() {
        "CRT" if inward => (Direction::Received, "RETURN_FROM_COURT"),
        "CRT" => (Direction::Released, "SENT_TO_COURT"),
        "TAP" if inward => (Direction::Received, movement_type::TEMPORARY_ABSENCE_RETURN),
        "TAP" => (Direction::Released, "TEMPORARY_ABSENCE_RELEASE"),
        "ADM" if matches!(reason_code.as_str(), "INT" | "TRNCRT" | "TRNTAP") => {
            (Direction::Received, movement_type::TRANSFERRED)
        }
        "ADM" => (Direction::Received, movement_type::ADMISSION),
        "REL" if HOSPITAL_CODES.contains(&reason_code.as_str()) => {
            (Direction::Released, movement_type::RELEASED_TO_HOSPITAL)
        }
        "REL" => (Direction::Released, movement_type::RELEASED),
        other => {
            return ignored(
                "UnableToCalculateMovementType",
                format!("movement type {other:?} of booking {}", booking.booking_id),
            )
        }
    };
    let prison = match direction {
        Direction::Received => movement.to_agency.clone(),
        Direction::Released => movement.from_agency.clone(),
    };
    Ok(Movement {
        noms_number: noms.to_string(),
        direction,
        movement_type: movement_type.to_string(),
        reason_code,
        occurred_at: london::to_utc(movement.movement_date.and_time(movement.movement_time)),
        prison,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKING: &str = include_str!(
        "../../fixtures/upstream/prison-custody-status-to-delius/simulations/__files/booking_1208804.json"
    );
    const MOVEMENT: &str = include_str!(
        "../../fixtures/upstream/prison-custody-status-to-delius/simulations/__files/movement_1208804.json"
    );

    fn booking() -> Booking {
        serde_json::from_str(BOOKING).unwrap()
    }

    fn movement() -> PrisonMovement {
        serde_json::from_str(MOVEMENT).unwrap()
    }

    #[test]
    fn the_sample_booking_is_a_transfer_into_swansea() {
        let m = movement_of("A5295DZ", &booking(), Some(movement())).unwrap();
        assert_eq!(m.direction, Direction::Received);
        assert_eq!(m.movement_type, "TRANSFERRED");
        assert_eq!(m.reason_code, "INT");
        assert_eq!(m.prison.as_deref(), Some("SWI"));
        // 2023-07-20 13:24:21 in London (BST) is 12:24:21 UTC.
        assert_eq!(m.occurred_at.to_rfc3339(), "2023-07-20T12:24:21+00:00");
    }

    #[test]
    fn the_live_ignorable_cases() {
        let name = |r: Result<Movement, LatestMovement>| match r {
            Err(LatestMovement::Ignored { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        let mut inactive = booking();
        inactive.active_flag = false;
        assert_eq!(
            name(movement_of("A", &inactive, Some(movement()))),
            "BookingInactive"
        );
        let mut moving = booking();
        moving.in_out_status = Some("TRN".into());
        assert_eq!(
            name(movement_of("A", &moving, Some(movement()))),
            "BeingTransferred"
        );
        assert_eq!(
            name(movement_of("A", &booking(), None)),
            "NoMovementInNomis"
        );
        let mut odd = booking();
        odd.last_movement_type_code = Some("XYZ".into());
        let mut odd_movement = movement();
        odd_movement.movement_type = Some("XYZ".into());
        assert_eq!(
            name(movement_of("A", &odd, Some(odd_movement))),
            "UnableToCalculateMovementType"
        );
    }

    #[test]
    fn a_booking_and_movement_that_disagree_are_retried() {
        let mut released = movement();
        released.movement_type = Some("REL".into());
        assert!(matches!(
            movement_of("A", &booking(), Some(released)),
            Err(LatestMovement::Inconsistent(_))
        ));
    }

    #[test]
    fn movement_types() {
        let cases = [
            (
                "REL",
                "HO",
                "OUT",
                "RELEASED_TO_HOSPITAL",
                Direction::Released,
            ),
            ("REL", "CR", "OUT", "RELEASED", Direction::Released),
            ("ADM", "N", "IN", "ADMISSION", Direction::Received),
            (
                "TAP",
                "24",
                "IN",
                "TEMPORARY_ABSENCE_RETURN",
                Direction::Received,
            ),
            ("CRT", "CRT", "OUT", "SENT_TO_COURT", Direction::Released),
        ];
        for (kind, reason, in_out, expected, direction) in cases {
            let mut b = booking();
            b.last_movement_type_code = Some(kind.into());
            b.last_movement_reason_code = Some(reason.into());
            b.in_out_status = Some(in_out.into());
            let mut m = movement();
            m.movement_type = Some(kind.into());
            let found = movement_of("A", &b, Some(m)).unwrap();
            assert_eq!(found.movement_type, expected, "{kind} {reason}");
            assert_eq!(found.direction, direction);
        }
    }
}
