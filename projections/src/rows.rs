//! Row changes: the only output of a projector, applied by a sink (PostgreSQL or memory).
//! Upsert writes the given columns (inserting the row if it is missing), Update writes them
//! only if the row exists, Delete removes it. Neither sink reads a row to decide a value.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// A row's primary key: a Delius numeric id or a reference-data code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Key {
    Id(i64),
    Code(String),
}

impl From<i64> for Key {
    fn from(id: i64) -> Self {
        Self::Id(id)
    }
}

impl From<&str> for Key {
    fn from(code: &str) -> Self {
        Self::Code(code.to_string())
    }
}

impl Key {
    /// The key as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Id(id) => Value::from(*id),
            Self::Code(code) => Value::from(code.as_str()),
        }
    }
}

/// One change to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    /// Insert the row with these columns, or set these columns on the existing row.
    Upsert {
        table: &'static str,
        key: Key,
        values: Map<String, Value>,
    },
    /// Set these columns on the row if it exists.
    Update {
        table: &'static str,
        key: Key,
        values: Map<String, Value>,
    },
    /// Remove the row.
    Delete { table: &'static str, key: Key },
}

impl RowChange {
    /// The table the change writes.
    pub fn table(&self) -> &'static str {
        match self {
            Self::Upsert { table, .. }
            | Self::Update { table, .. }
            | Self::Delete { table, .. } => table,
        }
    }

    /// The key of the row the change writes.
    pub fn key(&self) -> &Key {
        match self {
            Self::Upsert { key, .. } | Self::Update { key, .. } | Self::Delete { key, .. } => key,
        }
    }

    /// Builds an upsert from a JSON object of columns.
    pub fn upsert(table: &'static str, key: impl Into<Key>, values: Value) -> Self {
        Self::Upsert {
            table,
            key: key.into(),
            values: into_map(values),
        }
    }

    /// Builds an update from a JSON object of columns.
    pub fn update(table: &'static str, key: impl Into<Key>, values: Value) -> Self {
        Self::Update {
            table,
            key: key.into(),
            values: into_map(values),
        }
    }
}

fn into_map(values: Value) -> Map<String, Value> {
    match values {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A projected table: its name in the `delius` schema, its key column and whether it carries
/// the audit columns (`created_datetime`, `last_updated_datetime`, `last_updated_user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    pub name: &'static str,
    pub key: &'static str,
    /// Case tables carry audit columns; reference tables only `last_event_position`.
    pub audited: bool,
    /// Reference tables also hold migration-loaded rows (`last_event_position` NULL).
    pub reference: bool,
}

const fn case(name: &'static str, key: &'static str) -> TableDef {
    TableDef {
        name,
        key,
        audited: true,
        reference: false,
    }
}

const fn reference(name: &'static str) -> TableDef {
    TableDef {
        name,
        key: "code",
        audited: false,
        reference: true,
    }
}

/// Every table the Delius projector writes.
pub const TABLES: &[TableDef] = &[
    reference("r_institution"),
    reference("probation_area"),
    reference("pdu"),
    reference("team"),
    reference("staff"),
    reference("office_location"),
    reference("r_disposal_type"),
    case("offender", "offender_id"),
    case("event", "event_id"),
    case("disposal", "disposal_id"),
    case("requirement", "requirement_id"),
    case("licence_condition", "lic_condition_id"),
    case("custody", "custody_id"),
    case("custody_history", "custody_history_id"),
    case("release", "release_id"),
    case("recall", "recall_id"),
    case("key_date", "key_date_id"),
    case("offender_manager", "offender_manager_id"),
    case("prison_offender_manager", "prison_offender_manager_id"),
    case("responsible_officer", "responsible_officer_id"),
    case("nsi", "nsi_id"),
    case("nsi_manager", "nsi_manager_id"),
    case("nsi_status_history", "nsi_status_history_id"),
    case("contact", "contact_id"),
    case("enforcement", "enforcement_id"),
    case("contact_alert", "contact_alert_id"),
];

/// The definition of a projected table.
pub fn table(name: &str) -> Option<&'static TableDef> {
    table_index(name).map(|index| &TABLES[index])
}

/// The position of a projected table in [`TABLES`]: a `match` (a jump on the length, then one
/// comparison) where a scan of the list compares up to 26 names, on the path every projected
/// row takes.
pub fn table_index(name: &str) -> Option<usize> {
    Some(match name {
        "r_institution" => 0,
        "probation_area" => 1,
        "pdu" => 2,
        "team" => 3,
        "staff" => 4,
        "office_location" => 5,
        "r_disposal_type" => 6,
        "offender" => 7,
        "event" => 8,
        "disposal" => 9,
        "requirement" => 10,
        "licence_condition" => 11,
        "custody" => 12,
        "custody_history" => 13,
        "release" => 14,
        "recall" => 15,
        "key_date" => 16,
        "offender_manager" => 17,
        "prison_offender_manager" => 18,
        "responsible_officer" => 19,
        "nsi" => 20,
        "nsi_manager" => 21,
        "nsi_status_history" => 22,
        "contact" => 23,
        "enforcement" => 24,
        "contact_alert" => 25,
        _ => return None,
    })
}

/// What every change of one event carries besides its own columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    /// Global position of the event.
    pub position: i64,
    /// When the command that produced the event was received.
    pub at: DateTime<Utc>,
    /// Who caused it.
    pub user: String,
}

impl Stamp {
    /// Its columns' values, made once for every change of the event.
    pub fn values(&self) -> StampValues {
        StampValues {
            position: Value::from(self.position),
            at: Value::from(self.at.to_rfc3339()),
            user: Value::from(self.user.as_str()),
        }
    }
}

/// A [`Stamp`]'s column values ([`Stamp::values`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StampValues {
    position: Value,
    at: Value,
    user: Value,
}

/// Adds the key column, `last_event_position` and (on audited tables) the audit columns.
/// `created_datetime` is written only when an upsert inserts (see the sinks).
pub fn stamp(change: RowChange, stamp: &Stamp) -> RowChange {
    stamp_with(change, &stamp.values())
}

/// [`stamp`] with the stamp's values already made: what a projector calls for each change.
pub fn stamp_with(change: RowChange, stamp: &StampValues) -> RowChange {
    let add = |table: &'static str, key: &Key, values: &mut Map<String, Value>, insert: bool| {
        if let Some(def) = self::table(table) {
            values.insert(def.key.to_string(), key.to_value());
            values.insert("last_event_position".into(), stamp.position.clone());
            if def.audited {
                if insert {
                    values.insert("created_datetime".into(), stamp.at.clone());
                }
                values.insert("last_updated_datetime".into(), stamp.at.clone());
                values.insert("last_updated_user".into(), stamp.user.clone());
            }
        }
    };
    match change {
        RowChange::Upsert {
            table,
            key,
            mut values,
        } => {
            add(table, &key, &mut values, true);
            RowChange::Upsert { table, key, values }
        }
        RowChange::Update {
            table,
            key,
            mut values,
        } => {
            add(table, &key, &mut values, false);
            RowChange::Update { table, key, values }
        }
        delete @ RowChange::Delete { .. } => delete,
    }
}

/// Columns an upsert must not overwrite when the row already exists.
pub const INSERT_ONLY_COLUMNS: &[&str] = &["created_datetime"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_index_names_every_table_at_its_place_and_nothing_else() {
        for (index, def) in TABLES.iter().enumerate() {
            assert_eq!(table_index(def.name), Some(index), "{}", def.name);
            assert_eq!(table(def.name), Some(def));
        }
        assert_eq!(table_index("contacts"), None);
        assert_eq!(table_index(""), None);
    }
}
