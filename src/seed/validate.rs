//! The seed rules, each problem located by its JSON path.

use std::collections::{BTreeMap, BTreeSet};

use aggregates::common::FIRST_ALLOCATED_ID;

use super::codes::KnownCodes;
use super::file::SeedFile;
use super::SeedProblem;

/// Whether `crn` is a CRN: a capital letter and six digits.
pub fn is_crn(crn: &str) -> bool {
    let b = crn.as_bytes();
    b.len() == 7 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

/// Whether `noms` is a NOMS number: letter, four digits, two letters.
pub fn is_noms(noms: &str) -> bool {
    let b = noms.as_bytes();
    b.len() == 7
        && b[0].is_ascii_uppercase()
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_uppercase)
}

struct Checker<'a> {
    known: KnownCodes,
    ids: BTreeMap<&'static str, BTreeMap<i64, String>>,
    problems: Vec<SeedProblem>,
    _file: &'a SeedFile,
}

impl Checker<'_> {
    fn problem(&mut self, path: String, message: impl Into<String>) {
        self.problems.push(SeedProblem {
            path,
            message: message.into(),
        });
    }

    fn id(&mut self, kind: &'static str, id: i64, path: String) {
        if id <= 0 || id >= FIRST_ALLOCATED_ID {
            self.problem(
                path.clone(),
                format!(
                    "{kind} {id} must be between 1 and {}",
                    FIRST_ALLOCATED_ID - 1
                ),
            );
        }
        let seen = self.ids.entry(kind).or_default();
        if let Some(first) = seen.get(&id) {
            let message = format!("{kind} {id} is already used at {first}");
            self.problem(path, message);
        } else {
            seen.insert(id, path);
        }
    }

    fn code(&mut self, table: &str, code: &str, path: String) {
        if !self.known.contains(table, code) {
            self.problem(
                path,
                format!("unknown code {code:?} (not in delius.{table})"),
            );
        }
    }

    fn optional_code(&mut self, table: &str, code: &Option<String>, path: String) {
        if let Some(code) = code {
            self.code(table, code, path);
        }
    }
}

/// Every problem of `file`; empty when it may be loaded.
pub fn problems(file: &SeedFile, known: &KnownCodes) -> Vec<SeedProblem> {
    let mut known = known.clone();
    let data = &file.reference_data;
    for e in &data.probation_areas {
        known.insert("probation_area", e.code.clone());
    }
    for e in &data.institutions {
        known.insert("r_institution", e.code.clone());
    }
    for e in &data.pdus {
        known.insert("pdu", e.code.clone());
    }
    for e in &data.teams {
        known.insert("team", e.code.clone());
    }
    for e in &data.staff {
        known.insert("staff", e.code.clone());
    }
    for e in &data.office_locations {
        known.insert("office_location", e.code.clone());
    }
    for e in &data.disposal_types {
        known.insert("r_disposal_type", e.code.clone());
    }
    let mut c = Checker {
        known,
        ids: BTreeMap::new(),
        problems: Vec::new(),
        _file: file,
    };
    check_reference_data(&mut c, file);
    let mut crns = BTreeSet::new();
    for (i, case) in file.cases.iter().enumerate() {
        let at = format!("cases[{i}]");
        let person = &case.person;
        if !is_crn(&person.crn) {
            c.problem(
                format!("{at}.person.crn"),
                format!("{:?} is not a CRN ([A-Z][0-9]{{6}})", person.crn),
            );
        }
        if !crns.insert(person.crn.clone()) {
            c.problem(
                format!("{at}.person.crn"),
                format!("CRN {} appears twice", person.crn),
            );
        }
        if let Some(noms) = &person.noms_number {
            if !is_noms(noms) {
                c.problem(
                    format!("{at}.person.noms_number"),
                    format!("{noms:?} is not a NOMS number ([A-Z][0-9]{{4}}[A-Z]{{2}})"),
                );
            }
        }
        c.id(
            "offender_id",
            person.offender_id,
            format!("{at}.person.offender_id"),
        );
        let mut managers = BTreeSet::new();
        if let Some(m) = &case.community_manager {
            let p = format!("{at}.community_manager");
            c.id(
                "offender_manager_id",
                m.offender_manager_id,
                format!("{p}.offender_manager_id"),
            );
            c.code("staff", &m.staff_code, format!("{p}.staff_code"));
            c.code("team", &m.team_code, format!("{p}.team_code"));
            c.code(
                "probation_area",
                &m.probation_area_code,
                format!("{p}.probation_area_code"),
            );
            managers.insert(("com", m.offender_manager_id));
        }
        for (j, event) in case.events.iter().enumerate() {
            let p = format!("{at}.events[{j}]");
            c.id("event_id", event.event_id, format!("{p}.event_id"));
            let Some(disposal) = &event.disposal else {
                continue;
            };
            let p = format!("{p}.disposal");
            c.id(
                "disposal_id",
                disposal.disposal_id,
                format!("{p}.disposal_id"),
            );
            c.code(
                "r_disposal_type",
                &disposal.disposal_type_code,
                format!("{p}.disposal_type_code"),
            );
            for (k, r) in disposal.requirements.iter().enumerate() {
                let p = format!("{p}.requirements[{k}]");
                c.id(
                    "requirement_id",
                    r.requirement_id,
                    format!("{p}.requirement_id"),
                );
                c.code(
                    "r_requirement_main_category",
                    &r.main_category_code,
                    format!("{p}.main_category_code"),
                );
            }
            let Some(custody) = &disposal.custody else {
                continue;
            };
            let p = format!("{p}.custody");
            c.id("custody_id", custody.custody_id, format!("{p}.custody_id"));
            c.code(
                "r_custodial_status",
                &custody.custodial_status_code,
                format!("{p}.custodial_status_code"),
            );
            c.optional_code(
                "r_institution",
                &custody.institution_code,
                format!("{p}.institution_code"),
            );
            for (k, r) in custody.releases.iter().enumerate() {
                let p = format!("{p}.releases[{k}]");
                c.id("release_id", r.release_id, format!("{p}.release_id"));
                c.code(
                    "r_release_type",
                    &r.release_type_code,
                    format!("{p}.release_type_code"),
                );
                c.optional_code(
                    "r_institution",
                    &r.institution_code,
                    format!("{p}.institution_code"),
                );
                c.optional_code(
                    "probation_area",
                    &r.probation_area_code,
                    format!("{p}.probation_area_code"),
                );
                if let Some(recall) = &r.recall {
                    c.id(
                        "recall_id",
                        recall.recall_id,
                        format!("{p}.recall.recall_id"),
                    );
                    c.code(
                        "r_recall_reason",
                        &recall.recall_reason_code,
                        format!("{p}.recall.recall_reason_code"),
                    );
                    if recall.recall_date < r.actual_release_date {
                        c.problem(
                            format!("{p}.recall.recall_date"),
                            "a recall cannot precede its release",
                        );
                    }
                }
            }
            for (k, l) in custody.licence_conditions.iter().enumerate() {
                let p = format!("{p}.licence_conditions[{k}]");
                c.id(
                    "lic_condition_id",
                    l.lic_condition_id,
                    format!("{p}.lic_condition_id"),
                );
                c.code(
                    "r_licence_condition_main_category",
                    &l.main_category_code,
                    format!("{p}.main_category_code"),
                );
                c.optional_code(
                    "r_termination_reason",
                    &l.termination_reason_code,
                    format!("{p}.termination_reason_code"),
                );
            }
            for (k, d) in custody.key_dates.iter().enumerate() {
                let p = format!("{p}.key_dates[{k}]");
                c.id("key_date_id", d.key_date_id, format!("{p}.key_date_id"));
                c.code(
                    "r_key_date_type",
                    &d.key_date_type_code,
                    format!("{p}.key_date_type_code"),
                );
            }
        }
        for (j, m) in case.prison_managers.iter().enumerate() {
            let p = format!("{at}.prison_managers[{j}]");
            c.id(
                "prison_offender_manager_id",
                m.prison_offender_manager_id,
                format!("{p}.prison_offender_manager_id"),
            );
            c.code("staff", &m.staff_code, format!("{p}.staff_code"));
            c.code("team", &m.team_code, format!("{p}.team_code"));
            c.code(
                "probation_area",
                &m.probation_area_code,
                format!("{p}.probation_area_code"),
            );
            c.optional_code(
                "r_pom_allocation_reason",
                &m.allocation_reason_code,
                format!("{p}.allocation_reason_code"),
            );
            managers.insert(("pom", m.prison_offender_manager_id));
        }
        for (j, ro) in case.responsible_officers.iter().enumerate() {
            let p = format!("{at}.responsible_officers[{j}]");
            c.id(
                "responsible_officer_id",
                ro.responsible_officer_id,
                format!("{p}.responsible_officer_id"),
            );
            match (ro.prison_offender_manager_id, ro.offender_manager_id) {
                (Some(pom), None) if managers.contains(&("pom", pom)) => {}
                (None, Some(com)) if managers.contains(&("com", com)) => {}
                (Some(_), Some(_)) | (None, None) => c.problem(
                    p,
                    "exactly one of prison_offender_manager_id and offender_manager_id must be set",
                ),
                _ => c.problem(
                    p,
                    "the responsible officer must be one of this case's managers",
                ),
            }
        }
    }
    c.problems
}

fn check_reference_data(c: &mut Checker<'_>, file: &SeedFile) {
    let data = &file.reference_data;
    for (i, e) in data.institutions.iter().enumerate() {
        c.optional_code(
            "probation_area",
            &e.probation_area_code,
            format!("reference_data.institutions[{i}].probation_area_code"),
        );
        if let Some(nomis) = &e.nomis_code {
            if nomis.is_empty() {
                c.problem(
                    format!("reference_data.institutions[{i}].nomis_code"),
                    "must not be empty",
                );
            }
        }
    }
    for (i, e) in data.probation_areas.iter().enumerate() {
        c.optional_code(
            "r_institution",
            &e.institution_code,
            format!("reference_data.probation_areas[{i}].institution_code"),
        );
    }
    for (i, e) in data.pdus.iter().enumerate() {
        c.code(
            "probation_area",
            &e.probation_area_code,
            format!("reference_data.pdus[{i}].probation_area_code"),
        );
    }
    for (i, e) in data.teams.iter().enumerate() {
        c.code(
            "probation_area",
            &e.probation_area_code,
            format!("reference_data.teams[{i}].probation_area_code"),
        );
        c.optional_code(
            "pdu",
            &e.pdu_code,
            format!("reference_data.teams[{i}].pdu_code"),
        );
    }
    for (i, e) in data.staff.iter().enumerate() {
        c.code(
            "probation_area",
            &e.probation_area_code,
            format!("reference_data.staff[{i}].probation_area_code"),
        );
        for (j, team) in e.team_codes.iter().enumerate() {
            c.code(
                "team",
                team,
                format!("reference_data.staff[{i}].team_codes[{j}]"),
            );
        }
    }
    for (i, e) in data.office_locations.iter().enumerate() {
        c.code(
            "probation_area",
            &e.probation_area_code,
            format!("reference_data.office_locations[{i}].probation_area_code"),
        );
    }
    let mut seen: BTreeMap<(&'static str, String), String> = BTreeMap::new();
    let mut duplicate = |table: &'static str, code: &str, path: String, c: &mut Checker<'_>| {
        if let Some(first) = seen.get(&(table, code.to_string())) {
            let message = format!("{table} code {code:?} is already defined at {first}");
            c.problem(path, message);
        } else {
            seen.insert((table, code.to_string()), path);
        }
    };
    for (i, e) in data.probation_areas.iter().enumerate() {
        duplicate(
            "probation_area",
            &e.code,
            format!("reference_data.probation_areas[{i}].code"),
            c,
        );
    }
    for (i, e) in data.institutions.iter().enumerate() {
        duplicate(
            "r_institution",
            &e.code,
            format!("reference_data.institutions[{i}].code"),
            c,
        );
    }
    for (i, e) in data.pdus.iter().enumerate() {
        duplicate("pdu", &e.code, format!("reference_data.pdus[{i}].code"), c);
    }
    for (i, e) in data.teams.iter().enumerate() {
        duplicate(
            "team",
            &e.code,
            format!("reference_data.teams[{i}].code"),
            c,
        );
    }
    for (i, e) in data.staff.iter().enumerate() {
        duplicate(
            "staff",
            &e.code,
            format!("reference_data.staff[{i}].code"),
            c,
        );
    }
    for (i, e) in data.office_locations.iter().enumerate() {
        duplicate(
            "office_location",
            &e.code,
            format!("reference_data.office_locations[{i}].code"),
            c,
        );
    }
    for (i, e) in data.disposal_types.iter().enumerate() {
        duplicate(
            "r_disposal_type",
            &e.code,
            format!("reference_data.disposal_types[{i}].code"),
            c,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crn_and_noms_formats() {
        assert!(is_crn("X123456"));
        assert!(!is_crn("x123456"));
        assert!(!is_crn("X12345"));
        assert!(!is_crn("XX23456"));
        assert!(is_noms("A1234BC"));
        assert!(!is_noms("A1234B1"));
        assert!(!is_noms("A123BCD"));
    }
}
