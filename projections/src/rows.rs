//! Row changes: the only output of a projector, applied by a sink (PostgreSQL or memory).
//! Upsert writes the given columns (inserting the row if it is missing), Update writes them
//! only if the row exists, Delete removes it. Neither sink reads a row to decide a value.

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
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

/// A row's columns: name and value pairs kept in name order, as a `serde_json::Map` keeps
/// them (so rows group, print and serialize the same), with names that are the projector's
/// own `&'static str`s. Every projected row is built as one of these: a few allocations
/// where a map of owned names took one per column plus its B-tree nodes (the replay's
/// largest cost, BENCHMARKS.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns(Vec<(&'static str, Value)>);

/// Orders two column names as `str::cmp` does. Names are short and most part within their
/// first bytes, so a byte loop beats a call to `memcmp` (which `str::cmp` makes, and which
/// was the replay's largest cost in this process); one name compared with itself (the same
/// literal) is equal at once.
#[inline]
pub fn compare_names(a: &str, b: &str) -> std::cmp::Ordering {
    if std::ptr::eq(a, b) {
        return std::cmp::Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl Columns {
    /// No columns.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// No columns, room for `capacity`.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// Where `name` is (`Ok`) or would go (`Err`).
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(column, _)| compare_names(column, name))
    }

    /// Sets `name` to `value`, replacing any value it had.
    pub fn insert(&mut self, name: &'static str, value: Value) {
        match self.position(name) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (name, value)),
        }
    }

    /// Sets each of `columns` (distinct names, in any order) as [`Columns::insert`] would one
    /// after the other, in one pass: names already set are replaced where they are, the rest
    /// merged in from the back, so no column moves more than once and the vector grows at most
    /// once. What a row's stamp adds to every projected row (inserting them one by one was
    /// ~9 % of a replay process's samples; BENCHMARKS.md).
    pub fn insert_all<const N: usize>(&mut self, columns: [(&'static str, Value); N]) {
        let mut new: [Option<(&'static str, Value)>; N] = columns.map(Some);
        let mut fresh = 0;
        for slot in &mut new {
            let Some((name, _)) = slot else { continue };
            match self.position(name) {
                Ok(at) => {
                    if let Some((_, value)) = slot.take() {
                        self.0[at].1 = value;
                    }
                }
                Err(_) => fresh += 1,
            }
        }
        if fresh == 0 {
            return;
        }
        // The new names in order (the replaced ones, now `None`, first), taken from the back
        // as the merge fills it: sorted in place, no allocation on this per-row path.
        new.sort_unstable_by(|a, b| match (a, b) {
            (Some(a), Some(b)) => compare_names(a.0, b.0),
            _ => a.is_some().cmp(&b.is_some()),
        });
        let old = self.0.len();
        self.0.resize_with(old + fresh, || ("", Value::Null));
        let (mut read, mut write) = (old, old + fresh);
        for next in new.into_iter().rev().flatten() {
            // Shift the existing columns that sort after `next` up to their final places.
            while read > 0 && compare_names(self.0[read - 1].0, next.0).is_gt() {
                read -= 1;
                write -= 1;
                self.0.swap(read, write);
            }
            write -= 1;
            self.0[write] = next;
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).ok().map(|at| &self.0[at].1)
    }

    /// Whether `name` is set.
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// How many columns are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The columns' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(column, _)| *column)
    }

    /// The columns' values, in their names' order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, value)| value)
    }

    /// The columns, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(column, value)| (*column, value))
    }

    /// The columns as a JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(column, value)| (column.to_string(), value))
            .collect()
    }

    /// The columns of a struct, by its serialized field names (`None` if `value` does not
    /// serialize as a struct of plain fields).
    pub fn of<T: Serialize>(value: &T) -> Option<Self> {
        value.serialize(StructColumns).ok()
    }
}

impl IntoIterator for Columns {
    type Item = (&'static str, Value);
    type IntoIter = std::vec::IntoIter<(&'static str, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Extend<(&'static str, Value)> for Columns {
    fn extend<I: IntoIterator<Item = (&'static str, Value)>>(&mut self, columns: I) {
        for (column, value) in columns {
            self.insert(column, value);
        }
    }
}

impl FromIterator<(&'static str, Value)> for Columns {
    fn from_iter<I: IntoIterator<Item = (&'static str, Value)>>(columns: I) -> Self {
        let mut all = Self::new();
        all.extend(columns);
        all
    }
}

impl Serialize for Columns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (column, value) in &self.0 {
            map.serialize_entry(column, value)?;
        }
        map.end()
    }
}

/// A column's value: what `serde_json::json!` makes of it. The projector's values (numbers,
/// strings, dates, options of them) always serialize; anything that would not is `null`.
pub fn value<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// [`Columns`] written as `serde_json::json!`'s object: `columns!({ "a": x, "b": y })`.
#[macro_export]
macro_rules! columns {
    ({ $($name:literal : $value:expr),* $(,)? }) => {{
        let mut columns = $crate::rows::Columns::with_capacity(16);
        $( columns.insert($name, $crate::rows::value(&$value)); )*
        columns
    }};
}

/// The serializer behind [`Columns::of`]: a struct's fields, by their `&'static str` names.
struct StructColumns;

/// What [`StructColumns`] rejects: anything but a struct.
#[derive(Debug)]
struct NotAStruct;

impl std::fmt::Display for NotAStruct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("row columns come from a struct")
    }
}

impl std::error::Error for NotAStruct {}

impl serde::ser::Error for NotAStruct {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotAStruct
    }
}

/// The fields [`StructColumns`] has collected.
struct Fields(Columns);

impl serde::ser::SerializeStruct for Fields {
    type Ok = Columns;
    type Error = NotAStruct;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        field: &T,
    ) -> Result<(), NotAStruct> {
        self.0
            .insert(name, serde_json::to_value(field).map_err(|_| NotAStruct)?);
        Ok(())
    }

    fn skip_field(&mut self, _: &'static str) -> Result<(), NotAStruct> {
        Ok(())
    }

    fn end(self) -> Result<Columns, NotAStruct> {
        Ok(self.0)
    }
}

macro_rules! not_a_struct {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Columns, NotAStruct> {
            Err(NotAStruct)
        })*
    };
}

impl Serializer for StructColumns {
    type Ok = Columns;
    type Error = NotAStruct;
    type SerializeSeq = serde::ser::Impossible<Columns, NotAStruct>;
    type SerializeTuple = serde::ser::Impossible<Columns, NotAStruct>;
    type SerializeTupleStruct = serde::ser::Impossible<Columns, NotAStruct>;
    type SerializeTupleVariant = serde::ser::Impossible<Columns, NotAStruct>;
    type SerializeMap = serde::ser::Impossible<Columns, NotAStruct>;
    type SerializeStruct = Fields;
    type SerializeStructVariant = serde::ser::Impossible<Columns, NotAStruct>;

    fn serialize_struct(
        self,
        _: &'static str,
        fields: usize,
    ) -> Result<Self::SerializeStruct, NotAStruct> {
        // Room for the key, audit and default columns the projector adds.
        Ok(Fields(Columns::with_capacity(fields + 8)))
    }

    not_a_struct!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Columns, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Columns, NotAStruct> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Columns, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAStruct> {
        Err(NotAStruct)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAStruct> {
        Err(NotAStruct)
    }
}

/// One change to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    /// Insert the row with these columns, or set these columns on the existing row.
    Upsert {
        table: &'static str,
        key: Key,
        values: Columns,
    },
    /// Set these columns on the row if it exists.
    Update {
        table: &'static str,
        key: Key,
        values: Columns,
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

    /// Builds an upsert of these columns.
    pub fn upsert(table: &'static str, key: impl Into<Key>, values: Columns) -> Self {
        Self::Upsert {
            table,
            key: key.into(),
            values,
        }
    }

    /// Builds an update of these columns.
    pub fn update(table: &'static str, key: impl Into<Key>, values: Columns) -> Self {
        Self::Update {
            table,
            key: key.into(),
            values,
        }
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
    let add = |table: &'static str, key: &Key, values: &mut Columns, insert: bool| {
        let Some(def) = self::table(table) else {
            return;
        };
        let key = (def.key, key.to_value());
        let position = ("last_event_position", stamp.position.clone());
        match (def.audited, insert) {
            (false, _) => values.insert_all([key, position]),
            (true, false) => values.insert_all([
                key,
                position,
                ("last_updated_datetime", stamp.at.clone()),
                ("last_updated_user", stamp.user.clone()),
            ]),
            (true, true) => values.insert_all([
                key,
                position,
                ("created_datetime", stamp.at.clone()),
                ("last_updated_datetime", stamp.at.clone()),
                ("last_updated_user", stamp.user.clone()),
            ]),
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

    #[test]
    fn columns_keep_name_order_and_a_replaced_value_keeps_its_place() {
        let mut columns = Columns::new();
        columns.insert("notes", Value::from("a"));
        columns.insert("active", Value::from(true));
        columns.insert("nsi_id", Value::from(7));
        columns.insert("notes", Value::from("b"));
        assert_eq!(
            columns.names().collect::<Vec<_>>(),
            ["active", "notes", "nsi_id"]
        );
        assert_eq!(columns.get("notes"), Some(&Value::from("b")));
        assert!(!columns.contains_key("note"));
        assert_eq!(columns.len(), 3);
    }

    #[test]
    fn insert_all_sets_what_inserting_one_by_one_sets() {
        const POOL: [&str; 10] = [
            "a",
            "active",
            "contact_id",
            "created_datetime",
            "last_event_position",
            "last_updated_datetime",
            "last_updated_user",
            "notes",
            "nsi_id",
            "z",
        ];
        // A small generator (xorshift), so every run checks the same 3 000 cases.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut checked = 0;
        for case in 0..3_000 {
            let mut existing = Columns::new();
            for _ in 0..next(8) {
                existing.insert(POOL[next(POOL.len())], Value::from(next(100)));
            }
            // Five distinct names, some already set, some not, in any order.
            let mut names: Vec<&'static str> = Vec::new();
            while names.len() < 5 {
                let name = POOL[next(POOL.len())];
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let values: Vec<Value> = names.iter().map(|_| Value::from(1_000 + case)).collect();
            let mut one_by_one = existing.clone();
            for (name, value) in names.iter().zip(&values) {
                one_by_one.insert(name, value.clone());
            }
            let mut all = existing.clone();
            let pairs: [(&'static str, Value); 5] =
                std::array::from_fn(|i| (names[i], values[i].clone()));
            all.insert_all(pairs);
            assert_eq!(all, one_by_one, "{existing:?} + {names:?}");
            let mut two = existing.clone();
            two.insert_all([(names[0], values[0].clone()), (names[1], values[1].clone())]);
            let mut two_by_one = existing;
            two_by_one.insert(names[0], values[0].clone());
            two_by_one.insert(names[1], values[1].clone());
            assert_eq!(two, two_by_one);
            checked += 1;
        }
        assert_eq!(checked, 3_000);
    }

    #[test]
    fn names_compare_as_strings_do() {
        let names = [
            "",
            "a",
            "ab",
            "a_b",
            "aa",
            "b",
            "ba",
            "contact_id",
            "contact_date",
        ];
        for a in names {
            for b in names {
                assert_eq!(compare_names(a, b), a.cmp(b), "{a:?} against {b:?}");
            }
        }
        let owned = String::from("contact_id");
        assert!(compare_names("contact_id", &owned).is_eq());
    }

    #[test]
    fn the_columns_macro_makes_what_json_makes() {
        let date = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let none: Option<i64> = None;
        let made = crate::columns!({
            "start_date": date,
            "count": 3,
            "code": "REL",
            "end_date": none,
            "nothing": Value::Null,
        });
        let expected = serde_json::json!({
            "start_date": date,
            "count": 3,
            "code": "REL",
            "end_date": none,
            "nothing": null,
        });
        assert_eq!(serde_json::to_value(&made).unwrap(), expected);
        assert_eq!(Value::Object(made.into_map()), expected);
    }

    #[test]
    fn columns_of_a_struct_are_its_serialized_fields() {
        #[derive(Serialize)]
        struct Row {
            contact_id: i64,
            #[serde(rename = "contact_type_code")]
            kind: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            notes: Option<String>,
            outcome: Option<String>,
            nested: Vec<i64>,
        }
        let row = Row {
            contact_id: 1,
            kind: "EASN",
            notes: None,
            outcome: None,
            nested: vec![1, 2],
        };
        let columns = Columns::of(&row).unwrap();
        assert_eq!(
            serde_json::to_value(&columns).unwrap(),
            serde_json::to_value(&row).unwrap()
        );
        assert_eq!(
            columns.names().collect::<Vec<_>>(),
            ["contact_id", "contact_type_code", "nested", "outcome"]
        );
        assert_eq!(Columns::of(&7), None);
        assert_eq!(Columns::of(&vec![1]), None);
        assert_eq!(Columns::of(&Some(row)), None);
    }
}
