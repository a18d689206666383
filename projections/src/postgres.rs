//! PostgreSQL side of projections: reading the log in global order below the in-flight
//! horizon, applying row changes in bulk, and the catch-up runner that keeps the `delius`
//! tables current with one active instance per projector.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio::sync::{watch, Notify};

use crate::copy_binary::{self, ColumnType};
use crate::log::{DecodeError, Json, LoggedEvent, RecordedEvent};
use crate::rows::{self, Columns, Key, RowChange, Stamp, INSERT_ONLY_COLUMNS};
use crate::Checkpoint;

/// Why projecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed; the batch was rolled back and is retried.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An event cannot be decoded: the projector stops at it (it never skips an event).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A schema or table name that is not a plain lowercase identifier.
    #[error("invalid identifier {0:?}")]
    Identifier(String),
}

const SELECT_EVENTS: &str = "SELECT global_position, transaction_id::text::bigint AS txid, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at \
     FROM events";

fn recorded_event<P>(row: &PgRow) -> Result<RecordedEvent<P>, sqlx::Error>
where
    P: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    // By position, in SELECT_EVENTS's order: a name would be a hash lookup per column.
    Ok(RecordedEvent {
        global_position: row.try_get(0)?,
        transaction_id: row.try_get(1)?,
        aggregate_type: row.try_get(2)?,
        aggregate_id: row.try_get(3)?,
        sequence: row.try_get(4)?,
        event_type: row.try_get(5)?,
        event_version: row.try_get(6)?,
        payload: row.try_get(7)?,
        metadata: row.try_get(8)?,
        recorded_at: row.try_get(9)?,
    })
}

/// Reads up to `limit` events after `after`, in global order, from transactions older than
/// every transaction still in flight — so no event can later appear before the ones returned.
/// With `until`, only events recorded at or before that moment. Payloads stay JSON text.
pub async fn read_events_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<LoggedEvent>, sqlx::Error> {
    let sql = format!(
        "{SELECT_EVENTS} WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
         AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         AND ($4::timestamptz IS NULL OR recorded_at <= $4) \
         ORDER BY transaction_id, global_position LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .bind(until)
        .fetch_all(conn)
        .await?;
    rows.iter().map(recorded_event).collect()
}

/// A projector's stored checkpoint (none stored: the start) and up to `limit` events after
/// it, as [`read_events_after`] reads them, in one statement and so one snapshot: a runner
/// batch reads where it is and what comes next in one round trip.
pub async fn read_events_after_checkpoint(
    conn: &mut PgConnection,
    projector: &str,
    limit: i64,
) -> Result<(Checkpoint, Vec<LoggedEvent>), sqlx::Error> {
    let sql = format!(
        "WITH ck AS ( \
           SELECT COALESCE((SELECT transaction_id FROM projector_checkpoint WHERE projector = $1), 0) AS t, \
                  COALESCE((SELECT global_position FROM projector_checkpoint WHERE projector = $1), 0) AS p \
         ) \
         SELECT e.*, ck.t, ck.p FROM ck LEFT JOIN LATERAL ( \
           {SELECT_EVENTS} WHERE (transaction_id, global_position) > (ck.t::text::xid8, ck.p) \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
           ORDER BY transaction_id, global_position LIMIT $2 \
         ) e ON true"
    );
    let rows = sqlx::query(&sql)
        .bind(projector)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    let checkpoint = match rows.first() {
        Some(row) => Checkpoint {
            transaction_id: row.try_get(10)?,
            global_position: row.try_get(11)?,
        },
        None => Checkpoint::default(),
    };
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        // The LEFT JOIN gives one row of NULL events when there is none after the checkpoint.
        if row.try_get::<Option<i64>, _>(0)?.is_some() {
            events.push(recorded_event(row)?);
        }
    }
    Ok((checkpoint, events))
}

/// Reads the events of one aggregate in sequence order (audit).
pub async fn read_stream(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let sql = format!(
        "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(recorded_event).collect()
}

/// Checks that a schema or table name is a plain lowercase identifier.
pub fn identifier(name: &str) -> Result<&str, ProjectionError> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(ProjectionError::Identifier(name.to_string()))
    }
}

#[derive(Debug, Clone)]
enum Pending {
    Upsert(Columns),
    Update(Columns),
    Delete,
}

/// Staged rows by `(index in TABLES, key)`: a byte compares faster than a table's name.
type Staged = BTreeMap<(u8, Key), Pending>;

/// Stages row changes and writes them in bulk: one statement per table, kind and column set
/// (`jsonb_populate_recordset`). Changes to one row merge exactly as if applied one by one;
/// where they cannot, the staged set is sealed and a new one started, and [`PgSink::flush`]
/// writes the sealed sets in order. Staging needs no connection, so a batch can be staged
/// while the previous one is being written.
#[derive(Debug)]
pub struct PgSink {
    schema: String,
    sealed: Vec<Staged>,
    staged: Staged,
    /// A change named a table the projection does not have: encoding fails with it.
    unknown: Option<&'static str>,
    /// A change of a reference table was staged (readers may hold copies of those).
    reference_changed: bool,
}

fn merge(into: &mut Columns, from: Columns) {
    for (column, value) in from {
        if INSERT_ONLY_COLUMNS.contains(&column) && into.contains_key(column) {
            continue;
        }
        into.insert(column, value);
    }
}

impl PgSink {
    /// A sink writing into `schema` (normally `delius`).
    pub fn new(schema: &str) -> Result<Self, ProjectionError> {
        Ok(Self {
            schema: identifier(schema)?.to_string(),
            sealed: Vec::new(),
            staged: BTreeMap::new(),
            unknown: None,
            reference_changed: false,
        })
    }

    /// Whether any change staged since the sink was made is to a reference table
    /// ([`TableDef::reference`](crate::TableDef)), whose rows readers may cache.
    pub fn changes_reference(&self) -> bool {
        self.reference_changed
    }

    /// Stages one stamped change, sealing the staged set first when it cannot merge with it.
    pub fn stage(&mut self, change: RowChange) {
        let Some(table) = rows::table_index(change.table()).and_then(|i| u8::try_from(i).ok())
        else {
            self.unknown.get_or_insert(change.table());
            return;
        };
        self.reference_changed |= rows::TABLES[usize::from(table)].reference;
        let slot = (table, change.key().clone());
        let needs_seal = matches!(
            (self.staged.get(&slot), &change),
            (Some(Pending::Update(_)), RowChange::Upsert { .. })
                | (Some(Pending::Delete), RowChange::Upsert { .. })
        );
        if needs_seal {
            self.sealed.push(std::mem::take(&mut self.staged));
        }
        let pending = match self.staged.entry(slot) {
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(match change {
                    RowChange::Delete { .. } => Pending::Delete,
                    RowChange::Upsert { values, .. } => Pending::Upsert(values),
                    RowChange::Update { values, .. } => Pending::Update(values),
                });
                return;
            }
            std::collections::btree_map::Entry::Occupied(occupied) => occupied.into_mut(),
        };
        match (pending, change) {
            (pending, RowChange::Delete { .. }) => *pending = Pending::Delete,
            (Pending::Delete, RowChange::Update { .. }) => {}
            (Pending::Upsert(staged), RowChange::Upsert { values, .. })
            | (Pending::Upsert(staged), RowChange::Update { values, .. })
            | (Pending::Update(staged), RowChange::Update { values, .. }) => merge(staged, values),
            // Sealed above: nothing is staged for this row any more.
            (pending, RowChange::Upsert { values, .. }) => *pending = Pending::Upsert(values),
        }
    }

    /// Writes everything staged, the sealed sets first, in order.
    pub async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        self.encode()?.execute(conn).await
    }

    /// Turns everything staged into the statements that write it, in order, leaving the sink
    /// empty. Pure CPU, so a replay encodes batch N + 1 while batch N is being written.
    pub fn encode(&mut self) -> Result<Encoded, ProjectionError> {
        self.encode_with(None)
    }

    /// As [`PgSink::encode`], for a sink writing a replay's shadow schema whose case rows
    /// `shadow` knows: upserts of rows it does not hold yet are plain inserts, written with
    /// `COPY` (no JSON for PostgreSQL to parse, no conflict to check), and `shadow` learns the
    /// rows the statements write or delete.
    pub fn encode_for_shadow(
        &mut self,
        shadow: &mut ShadowRows,
    ) -> Result<Encoded, ProjectionError> {
        self.encode_with(Some(shadow))
    }

    fn encode_with(
        &mut self,
        mut shadow: Option<&mut ShadowRows>,
    ) -> Result<Encoded, ProjectionError> {
        if let Some(table) = self.unknown.take() {
            self.sealed.clear();
            self.staged.clear();
            return Err(ProjectionError::Identifier(table.into()));
        }
        let mut statements = Vec::new();
        for set in std::mem::take(&mut self.sealed) {
            self.encode_set(set, shadow.as_deref_mut(), &mut statements)?;
        }
        let staged = std::mem::take(&mut self.staged);
        self.encode_set(staged, shadow, &mut statements)?;
        Ok(Encoded { statements })
    }

    fn encode_set(
        &self,
        set: Staged,
        mut shadow: Option<&mut ShadowRows>,
        statements: &mut Vec<Statement>,
    ) -> Result<(), ProjectionError> {
        let mut groups: BTreeMap<(u8, u8), ColumnGroups> = BTreeMap::new();
        let mut inserts: BTreeMap<u8, ColumnGroups> = BTreeMap::new();
        for ((table, key), pending) in set {
            let def = &rows::TABLES[usize::from(table)];
            if let Some(shadow) = shadow.as_deref_mut() {
                match &pending {
                    Pending::Upsert(values) if shadow.first_write(table, &key, values) => {
                        if let Pending::Upsert(values) = pending {
                            group(inserts.entry(table).or_default(), values);
                        }
                        continue;
                    }
                    Pending::Upsert(_) => shadow.written(table, &key),
                    Pending::Delete => shadow.deleted(table, &key),
                    Pending::Update(_) => {}
                }
            }
            let (kind, values) = match pending {
                Pending::Delete => {
                    let mut row = Columns::with_capacity(1);
                    row.insert(def.key, key.to_value());
                    (0, row)
                }
                Pending::Upsert(values) => (1, values),
                Pending::Update(values) => (2, values),
            };
            group(groups.entry((table, kind)).or_default(), values);
        }
        // Deletes first, each on its own; then every insert and update of the set in one
        // statement (a data-modifying CTE each): the set touches each row once, the schema has
        // no foreign keys, and sibling sub-statements of one statement run on one snapshot,
        // so one statement writes what they would one after the other, in one round trip.
        let mut combined: Vec<(String, String)> = Vec::new();
        let groups = groups
            .into_iter()
            .flat_map(|((table, kind), sets)| sets.into_iter().map(move |set| (table, kind, set)));
        for (table, kind, (columns, rows)) in groups {
            let def = &rows::TABLES[usize::from(table)];
            let target = format!("\"{}\".\"{}\"", self.schema, identifier(def.name)?);
            let key = def.key;
            for column in &columns {
                identifier(column)?;
            }
            let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            let param = format!("${}", combined.len() + 1);
            let sql = match kind {
                0 => {
                    statements.push(Statement::Query(
                        format!(
                            "DELETE FROM {target} t USING json_populate_recordset(NULL::{target}, $1::json) r \
                             WHERE t.\"{key}\" = r.\"{key}\""
                        ),
                        vec![json_text(&rows)],
                    ));
                    continue;
                }
                1 => {
                    let updates: Vec<String> = columns
                        .iter()
                        .filter(|c| **c != key && !INSERT_ONLY_COLUMNS.contains(c))
                        .map(|c| format!("\"{c}\" = EXCLUDED.\"{c}\""))
                        .collect();
                    let on_conflict = if updates.is_empty() {
                        "DO NOTHING".to_string()
                    } else {
                        format!("DO UPDATE SET {}", updates.join(", "))
                    };
                    format!(
                        "INSERT INTO {target} ({cols}) SELECT {cols} \
                         FROM json_populate_recordset(NULL::{target}, {param}::json) \
                         ON CONFLICT (\"{key}\") {on_conflict}",
                        cols = quoted.join(", ")
                    )
                }
                _ => {
                    let sets: Vec<String> = columns
                        .iter()
                        .filter(|c| **c != key)
                        .map(|c| format!("\"{c}\" = r.\"{c}\""))
                        .collect();
                    if sets.is_empty() {
                        continue;
                    }
                    format!(
                        "UPDATE {target} t SET {} FROM json_populate_recordset(NULL::{target}, {param}::json) r \
                         WHERE t.\"{key}\" = r.\"{key}\"",
                        sets.join(", ")
                    )
                }
            };
            combined.push((sql, json_text(&rows)));
        }
        match combined.len() {
            0 => {}
            1 => statements.extend(
                combined
                    .into_iter()
                    .map(|(sql, rows)| Statement::Query(sql, vec![rows])),
            ),
            _ => {
                let parts: Vec<String> = combined
                    .iter()
                    .enumerate()
                    .map(|(i, (sql, _))| format!("w{i} AS ({sql})"))
                    .collect();
                let sql = format!("WITH {} SELECT 1", parts.join(", "));
                statements.push(Statement::Query(
                    sql,
                    combined.into_iter().map(|(_, rows)| rows).collect(),
                ));
            }
        }
        // The set's rows are distinct, so its new rows can go before or after the rest.
        let inserts = inserts
            .into_iter()
            .flat_map(|(table, sets)| sets.into_iter().map(move |set| (table, set)));
        for (table, (columns, rows)) in inserts {
            let def = &rows::TABLES[usize::from(table)];
            let target = format!("\"{}\".\"{}\"", self.schema, identifier(def.name)?);
            let mut quoted = Vec::with_capacity(columns.len());
            for column in &columns {
                quoted.push(format!("\"{}\"", identifier(column)?));
            }
            let quoted = quoted.join(", ");
            let binary = shadow
                .as_deref()
                .and_then(|shadow| shadow.types(def.name, &columns))
                .and_then(|types| copy_binary::encode(&rows, &types));
            statements.push(match binary {
                Some(data) => Statement::Copy(
                    format!("COPY {target} ({quoted}) FROM STDIN WITH (FORMAT binary)"),
                    data,
                ),
                None => {
                    let mut data = Vec::new();
                    for row in &rows {
                        copy_text_row(row.values(), &mut data);
                    }
                    Statement::Copy(format!("COPY {target} ({quoted}) FROM STDIN"), data)
                }
            });
        }
        Ok(())
    }
}

/// The case-table rows a replay's shadow schema holds, so that [`PgSink::encode_for_shadow`]
/// can tell an upsert that inserts from one that may update. Loaded from the shadow when a
/// rebuild starts or resumes, then kept in step by the encoding; a rebuild whose write fails
/// stops, and its resumption loads the rows again.
#[derive(Debug, Default)]
pub struct ShadowRows {
    /// `(index in TABLES, key)` of each row.
    rows: IdSet,
    /// `(table, column)`s COPY's text format would not read as `json_populate_recordset` does
    /// (json, jsonb, arrays, composites): rows writing them take the upsert. A handful at most.
    not_copyable: Vec<(String, String)>,
    /// The type of each column, by table and column, where [`copy_binary`] writes it: the
    /// rows of a table whose columns all have one are copied in the binary format.
    types: HashMap<String, HashMap<String, ColumnType>>,
}

/// Bits per block of an [`IdSet`].
const ID_BLOCK: i64 = 512;

/// A set of `(table index, id)` as a sparse bitmap, in blocks of 512 ids: Delius ids come
/// from sequences, so a table's ids cluster and a block holds many. A hash set of the pairs
/// took ~100 MB for the ~2 M rows of the 1 M-event replay and pushed its peak RSS past 200 MB.
#[derive(Debug, Default)]
struct IdSet {
    blocks: HashMap<(u8, i64), [u64; (ID_BLOCK / 64) as usize], BuildHasherDefault<IdHasher>>,
    len: usize,
}

impl IdSet {
    /// The block, word and bit of `(table, id)`; `div_euclid` keeps negative ids apart too.
    fn locate((table, id): (u8, i64)) -> ((u8, i64), usize, u64) {
        let bit = id.rem_euclid(ID_BLOCK) as usize;
        ((table, id.div_euclid(ID_BLOCK)), bit / 64, 1 << (bit % 64))
    }

    fn contains(&self, slot: (u8, i64)) -> bool {
        let (block, word, bit) = Self::locate(slot);
        self.blocks
            .get(&block)
            .is_some_and(|words| words[word] & bit != 0)
    }

    /// Adds `slot`; whether it was new.
    fn insert(&mut self, slot: (u8, i64)) -> bool {
        let (block, word, bit) = Self::locate(slot);
        let words = self.blocks.entry(block).or_default();
        let new = words[word] & bit == 0;
        words[word] |= bit;
        self.len += usize::from(new);
        new
    }

    fn remove(&mut self, slot: (u8, i64)) {
        let (block, word, bit) = Self::locate(slot);
        if let Some(words) = self.blocks.get_mut(&block) {
            if words[word] & bit != 0 {
                words[word] &= !bit;
                self.len -= 1;
            }
        }
    }
}

impl ShadowRows {
    /// The case rows `schema` (a shadow of the Delius tables) holds now.
    pub async fn load(conn: &mut PgConnection, schema: &str) -> Result<Self, ProjectionError> {
        let schema = identifier(schema)?;
        let mut shadow = Self::default();
        for (index, def) in rows::TABLES.iter().enumerate() {
            if def.reference {
                continue;
            }
            let keys: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT \"{}\" FROM \"{schema}\".\"{}\"",
                identifier(def.key)?,
                identifier(def.name)?
            ))
            .fetch_all(&mut *conn)
            .await?;
            for key in keys {
                shadow.rows.insert((index as u8, key));
            }
        }
        // One read of the catalog gives both what COPY must not write and the binary types.
        let columns: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text, udt_name::text \
             FROM information_schema.columns WHERE table_schema = $1",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await?;
        for (table, column, data_type, udt) in columns {
            if matches!(
                data_type.as_str(),
                "json" | "jsonb" | "ARRAY" | "USER-DEFINED"
            ) {
                shadow.not_copyable.push((table, column));
            } else if let Some(kind) = ColumnType::of(&udt) {
                shadow.types.entry(table).or_default().insert(column, kind);
            }
        }
        Ok(shadow)
    }

    /// The binary types of `columns` of `table`, if it knows them all.
    fn types(&self, table: &str, columns: &[&'static str]) -> Option<Vec<ColumnType>> {
        let known = self.types.get(table)?;
        columns.iter().map(|c| known.get(*c).copied()).collect()
    }

    /// How many case rows it knows.
    pub fn len(&self) -> usize {
        self.rows.len
    }

    /// Whether it knows no case row.
    pub fn is_empty(&self) -> bool {
        self.rows.len == 0
    }

    /// The set's slot of a case row; `None` for reference rows (code keys, migration rows).
    fn slot(table: u8, key: &Key) -> Option<(u8, i64)> {
        match key {
            Key::Id(id) if !rows::TABLES[usize::from(table)].reference => Some((table, *id)),
            _ => None,
        }
    }

    /// Whether an upsert of `values` into row `key` of table `table` (its index in `TABLES`),
    /// which it does not hold, can be a `COPY`; if so the row is recorded as written.
    fn first_write(&mut self, table: u8, key: &Key, values: &Columns) -> bool {
        let Some(slot) = Self::slot(table, key) else {
            return false;
        };
        let name = rows::TABLES[usize::from(table)].name;
        if self.rows.contains(slot)
            || values.values().any(Value::is_array)
            || self
                .not_copyable
                .iter()
                .any(|(t, column)| t == name && values.contains_key(column))
        {
            return false;
        }
        self.rows.insert(slot)
    }

    fn written(&mut self, table: u8, key: &Key) {
        if let Some(slot) = Self::slot(table, key) {
            self.rows.insert(slot);
        }
    }

    fn deleted(&mut self, table: u8, key: &Key) {
        if let Some(slot) = Self::slot(table, key) {
            self.rows.remove(slot);
        }
    }
}

/// The hasher of [`ShadowRows`]: its keys are a table's index and a Delius id, so one
/// multiply per word (as rustc's FxHash) spreads them, at a fraction of SipHash's cost; the
/// ids come from this service's own log, not from an adversary.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Appends one row in `COPY`'s text format: tab-separated, `\N` for NULL, backslash escapes.
/// Each value becomes the text `json_populate_recordset` would give the column's input
/// function: a string as it is, a number or boolean as written in JSON, an object as JSON.
fn copy_text_row<'a>(values: impl Iterator<Item = &'a Value>, out: &mut Vec<u8>) {
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match value {
            Value::Null => out.extend_from_slice(b"\\N"),
            Value::String(text) => copy_escape(text, out),
            Value::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            other => copy_escape(&other.to_string(), out),
        }
    }
    out.push(b'\n');
}

fn copy_escape(text: &str, out: &mut Vec<u8>) {
    let mut rest = text.as_bytes();
    while let Some(at) = rest
        .iter()
        .position(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\t",
        });
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// One statement of an [`Encoded`] batch.
#[derive(Debug)]
enum Statement {
    /// SQL with its parameters: row sets as JSON text.
    Query(String, Vec<String>),
    /// `COPY … FROM STDIN` with its data in text format.
    Copy(String, Vec<u8>),
}

/// Staged row changes encoded as statements ([`PgSink::encode`]), ready to run in order.
#[derive(Debug, Default)]
pub struct Encoded {
    statements: Vec<Statement>,
}

impl Encoded {
    /// Adds a data-modifying statement to run after the others, **in the last statement's
    /// round trip** where that is a query: as one more sub-statement of its `WITH` list (a
    /// single statement is wrapped in one), which is sound when the trailer touches no row
    /// the sink writes (sibling sub-statements see one snapshot, not each other's writes).
    /// `trailer` gets the number of the first parameter it may use (`$n`) and answers its SQL
    /// and its parameters, bound as text (cast them).
    pub fn with_trailer(mut self, trailer: impl FnOnce(usize) -> (String, Vec<String>)) -> Self {
        match self.statements.last_mut() {
            Some(Statement::Query(sql, params)) => {
                let (extra, extra_params) = trailer(params.len() + 1);
                *sql = match sql
                    .strip_suffix(" SELECT 1")
                    .filter(|_| sql.starts_with("WITH "))
                {
                    Some(ctes) => format!("{ctes}, trailer AS ({extra}) SELECT 1"),
                    None => format!("WITH main AS ({sql}), trailer AS ({extra}) SELECT 1"),
                };
                params.extend(extra_params);
            }
            _ => {
                let (extra, extra_params) = trailer(1);
                self.statements.push(Statement::Query(extra, extra_params));
            }
        }
        self
    }

    /// Runs the statements in order on `conn`.
    pub async fn execute(self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        for statement in self.statements {
            match statement {
                Statement::Query(sql, params) => {
                    let mut query = sqlx::query(&sql);
                    for rows in params {
                        query = query.bind(rows);
                    }
                    query.execute(&mut *conn).await?;
                }
                Statement::Copy(sql, data) => {
                    let mut copy = conn.copy_in_raw(&sql).await?;
                    if let Err(error) = copy.send(data).await {
                        copy.abort(error.to_string()).await?;
                        return Err(error.into());
                    }
                    copy.finish().await?;
                }
            }
        }
        Ok(())
    }
}

/// Rows of one table and kind, by column set: few sets per table, so a row finds its set by
/// comparing names in place (no key to build per row).
type ColumnGroups = Vec<(Vec<&'static str>, Vec<Columns>)>;

fn group(sets: &mut ColumnGroups, values: Columns) {
    match sets.iter().position(|(columns, _)| {
        columns.len() == values.len()
            && columns
                .iter()
                .zip(values.names())
                .all(|(a, b)| rows::compare_names(a, b).is_eq())
    }) {
        Some(index) => sets[index].1.push(values),
        None => sets.push((values.names().collect(), vec![values])),
    }
}

/// Rows as a JSON array in text: bound as `text` and read with `json_populate_recordset`,
/// PostgreSQL only scans it, where a `jsonb` parameter is first parsed into jsonb's binary form.
fn json_text(rows: &[Columns]) -> String {
    // Serializing `Columns` cannot fail: string names, `Value`s.
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".to_string())
}

/// Where the time of [`project_events`] went: decoding and projecting (CPU, this process; in
/// a replay also encoding the statements, [`PgSink::encode`]) and writing (the database
/// round trips of the sink).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectTimings {
    pub decode_and_project: std::time::Duration,
    pub write: std::time::Duration,
}

impl std::ops::AddAssign for ProjectTimings {
    fn add_assign(&mut self, other: Self) {
        self.decode_and_project += other.decode_and_project;
        self.write += other.write;
    }
}

/// Decodes and projects `events` (already in global order) into `sink`'s staging; no I/O.
pub fn stage_events<P: Json>(
    sink: &mut PgSink,
    events: &[RecordedEvent<P>],
) -> Result<(), ProjectionError> {
    for event in events {
        let decoded = event.decode()?;
        let metadata = event.metadata()?;
        let stamp = Stamp {
            position: event.global_position,
            at: metadata.received_at,
            user: metadata.actor,
        };
        let stamp = stamp.values();
        for change in crate::delius::project(&decoded) {
            sink.stage(rows::stamp_with(change, &stamp));
        }
    }
    Ok(())
}

/// Projects `events` (already in global order) into `sink`'s schema: stages, then writes.
pub async fn project_events<P: Json>(
    conn: &mut PgConnection,
    sink: &mut PgSink,
    events: &[RecordedEvent<P>],
) -> Result<ProjectTimings, ProjectionError> {
    let started = std::time::Instant::now();
    stage_events(sink, events)?;
    let decode_and_project = started.elapsed();
    let started = std::time::Instant::now();
    sink.flush(conn).await?;
    Ok(ProjectTimings {
        decode_and_project,
        write: started.elapsed(),
    })
}

/// A projector's checkpoint as stored.
pub async fn load_checkpoint(
    conn: &mut PgConnection,
    projector: &str,
) -> Result<Checkpoint, sqlx::Error> {
    let row = sqlx::query(
        "SELECT transaction_id, global_position FROM projector_checkpoint WHERE projector = $1",
    )
    .bind(projector)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(row) => Checkpoint {
            transaction_id: row.try_get(0)?,
            global_position: row.try_get(1)?,
        },
        None => Checkpoint::default(),
    })
}

/// Settings of a catch-up runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The projector's name (checkpoint row and advisory lock).
    pub name: String,
    /// The schema it writes.
    pub schema: String,
    /// Events per transaction.
    pub batch_size: i64,
    /// How long to sleep when caught up and not woken.
    pub idle_poll: Duration,
    /// How often a standby instance checks whether the lock is free.
    pub standby_poll: Duration,
    /// Moved on after every batch that changed a reference table, before its checkpoint is
    /// published: readers in this process that cache reference rows drop them.
    pub reference_epoch: Arc<ReferenceEpoch>,
}

/// The `NOTIFY` channel on which every transaction that changes the rows of the reference
/// tables (a projector batch, a replay's swap) says so at its commit, so that processes
/// caching those rows drop them.
pub const REFERENCE_CHANNEL: &str = "delius_reference_changed";

/// A count of the reference-data changes this process has learnt of (its projector's
/// batches, [`REFERENCE_CHANNEL`] notifications): a copy of reference rows taken at one
/// count is good only while the count stays the same.
#[derive(Debug, Default)]
pub struct ReferenceEpoch(std::sync::atomic::AtomicU64);

impl ReferenceEpoch {
    /// The count now.
    pub fn current(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Counts one more change: every copy taken before is stale.
    pub fn advance(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl RunnerConfig {
    /// The live Delius projector.
    pub fn delius() -> Self {
        Self {
            name: crate::delius::NAME.to_string(),
            schema: "delius".to_string(),
            batch_size: 2_000,
            idle_poll: Duration::from_millis(10),
            standby_poll: Duration::from_millis(200),
            reference_epoch: Arc::default(),
        }
    }
}

/// Runs a catch-up projector until `shutdown` turns true or its sender is dropped. While
/// another process holds the projector's advisory lock this one stands by, publishing the
/// stored checkpoint so that in-process waiters still see progress.
pub async fn run(
    pool: PgPool,
    config: RunnerConfig,
    wake: Arc<Notify>,
    progress: watch::Sender<Checkpoint>,
    mut shutdown: watch::Receiver<bool>,
) {
    let lock_key = format!("projector:{}", config.name);
    let mut backoff = Duration::from_millis(50);
    while !*shutdown.borrow() {
        let outcome = run_once(&pool, &config, &lock_key, &wake, &progress, &mut shutdown).await;
        match outcome {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(error) => {
                tracing::error!(projector = %config.name, %error, "projector failed; retrying");
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            // The sender gone without saying stop (its engine dropped): stop too, rather than
            // loop on a `changed` that answers at once.
            changed = shutdown.changed() => if changed.is_err() { return; },
        }
    }
}

async fn run_once(
    pool: &PgPool,
    config: &RunnerConfig,
    lock_key: &str,
    wake: &Notify,
    progress: &watch::Sender<Checkpoint>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ProjectionError> {
    let mut conn = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(lock_key)
        .fetch_one(&mut conn)
        .await?;
    if !locked {
        let checkpoint = load_checkpoint(&mut conn, &config.name).await?;
        progress.send_if_modified(|current| replace_if_newer(current, checkpoint));
        tokio::select! {
            _ = tokio::time::sleep(config.standby_poll) => {}
            _ = shutdown.changed() => {}
        }
        return Ok(());
    }
    tracing::info!(projector = %config.name, "projector active");
    let mut checkpoint = load_checkpoint(&mut conn, &config.name).await?;
    progress.send_if_modified(|current| replace_if_newer(current, checkpoint));
    while !*shutdown.borrow() {
        let applied = step(&mut conn, config, &mut checkpoint).await?;
        // Published even when this batch applied nothing: a replay's swap may have moved the
        // checkpoint past events it projected itself.
        progress.send_if_modified(|current| replace_if_newer(current, checkpoint));
        if applied > 0 {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(config.idle_poll) => {}
            // The sender gone: back to `run`, which stops.
            changed = shutdown.changed() => if changed.is_err() { return Ok(()); },
        }
    }
    Ok(())
}

fn replace_if_newer(current: &mut Checkpoint, next: Checkpoint) -> bool {
    if next > *current {
        *current = next;
        true
    } else {
        false
    }
}

/// One batch in four round trips (three when there is nothing to do): begin holding the swap
/// lock (shared), read the checkpoint and the events after it, write the rows and the moved
/// checkpoint in one statement, commit. A batch that changes a reference table also
/// notifies [`REFERENCE_CHANNEL`] (one more round trip, in the same transaction) and, once
/// committed, advances `config.reference_epoch`. Returns how many events it applied.
pub async fn step(
    conn: &mut PgConnection,
    config: &RunnerConfig,
    checkpoint: &mut Checkpoint,
) -> Result<usize, ProjectionError> {
    // A replay swapping rebuilt tables in holds the swap lock exclusively and moves the
    // checkpoint: the transaction waits for the lock as it begins (one round trip), so the
    // next statement's snapshot follows it.
    let begin = format!(
        "BEGIN; {BATCH_SETTINGS} SELECT pg_advisory_xact_lock_shared(hashtext({}))",
        plain_literal(&crate::replay::swap_lock_key(&config.name))?
    );
    let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
    let (stored, events) =
        read_events_after_checkpoint(&mut tx, &config.name, config.batch_size).await?;
    *checkpoint = stored;
    let Some(last) = events.last() else {
        tx.commit().await?;
        return Ok(0);
    };
    let next = Checkpoint::of(last);
    let mut sink = PgSink::new(&config.schema)?;
    stage_events(&mut sink, &events)?;
    let reference_changed = sink.changes_reference();
    // The checkpoint is saved in the rows' round trip.
    sink.encode()?
        .with_trailer(checkpoint_trailer(&config.name, next, events.len()))
        .execute(&mut tx)
        .await?;
    if reference_changed {
        notify_reference_change(&mut tx).await?;
    }
    tx.commit().await?;
    if reference_changed {
        config.reference_epoch.advance();
    }
    *checkpoint = next;
    Ok(events.len())
}

/// Tells every listening process, when the transaction commits, that reference rows changed.
pub async fn notify_reference_change(conn: &mut PgConnection) -> Result<(), ProjectionError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(REFERENCE_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// Settings of a projector batch's transaction (live and replay), set as it begins:
/// - **rows by key only**: no hash or merge join, no sequential scan. Every statement of a
///   sink finds its rows by primary key; a plan that hashes a whole table to update a hundred
///   rows of it (chosen while the table was small, or before it was analyzed) made the live
///   projector's batches in the async benchmark cost ~7 ms each, mostly scanning `delius`
///   tables;
/// - **no wait for the WAL flush at commit** (`synchronous_commit = off`): the rows are a
///   projection of the log, which stays durable (appends commit synchronously), and the batch
///   commits its rows with its checkpoint; a batch lost in a crash is lost whole, checkpoint
///   included, and the projector applies those events again. Visibility does not wait for the
///   flush, so read-your-writes is unchanged.
pub const BATCH_SETTINGS: &str =
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; \
     SET LOCAL enable_seqscan = off; SET LOCAL synchronous_commit = off;";

/// `text` as a SQL string literal for a statement without parameters (`BEGIN; …` in one
/// round trip): only text that needs no escaping (no quote, no backslash) is accepted.
pub fn plain_literal(text: &str) -> Result<String, ProjectionError> {
    if text.contains(['\'', '\\']) {
        return Err(ProjectionError::Identifier(text.to_string()));
    }
    Ok(format!("'{text}'"))
}

/// The statement that saves `projector`'s checkpoint after `applied` more events, as an
/// [`Encoded::with_trailer`] trailer, so it rides in the round trip of the rows.
pub fn checkpoint_trailer(
    projector: &str,
    next: Checkpoint,
    applied: usize,
) -> impl FnOnce(usize) -> (String, Vec<String>) + '_ {
    move |n| {
        (
            format!(
                "INSERT INTO projector_checkpoint (projector, transaction_id, global_position, events_applied, updated_at) \
                 VALUES (${n}, ${}::bigint, ${}::bigint, ${}::bigint, now()) \
                 ON CONFLICT (projector) DO UPDATE SET transaction_id = EXCLUDED.transaction_id, \
                 global_position = EXCLUDED.global_position, \
                 events_applied = projector_checkpoint.events_applied + EXCLUDED.events_applied, \
                 updated_at = now()",
                n + 1,
                n + 2,
                n + 3
            ),
            vec![
                projector.to_string(),
                next.transaction_id.to_string(),
                next.global_position.to_string(),
                applied.to_string(),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::columns;

    use super::*;

    fn copy_text(values: &[Value]) -> String {
        let mut out = Vec::new();
        copy_text_row(values.iter(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn copy_text_escapes_what_copy_reads_specially() {
        assert_eq!(
            copy_text(&[
                json!("a\tb\nc\rd\\e \\N"),
                Value::Null,
                json!(42),
                json!(-1.5),
                json!(true),
                json!(false),
                json!(""),
                json!({"k": "v\t"}),
                json!("ünï ✓"),
            ]),
            "a\\tb\\nc\\rd\\\\e \\\\N\t\\N\t42\t-1.5\ttrue\tfalse\t\t{\"k\":\"v\\\\t\"}\tünï ✓\n"
        );
    }

    fn upsert(table: &'static str, id: i64, note: &str) -> RowChange {
        RowChange::upsert(table, id, columns!({ "contact_id": id, "notes": note }))
    }

    #[test]
    fn a_sink_knows_whether_it_changed_a_reference_table() {
        let mut sink = PgSink::new("delius").unwrap();
        sink.stage(upsert("contact", 1, "a"));
        sink.stage(RowChange::update(
            "offender",
            2,
            columns!({ "surname": "B" }),
        ));
        sink.stage(RowChange::Delete {
            table: "nsi",
            key: Key::Id(3),
        });
        assert!(!sink.changes_reference(), "case rows only");
        sink.stage(RowChange::Upsert {
            table: "r_institution",
            key: Key::Code("NEWHMP".into()),
            values: columns!({ "code": "NEWHMP", "description": "HMP New" }),
        });
        assert!(sink.changes_reference());
        // Encoding empties the sink but does not forget.
        sink.encode().unwrap();
        assert!(sink.changes_reference());
        for table in [
            "probation_area",
            "pdu",
            "team",
            "staff",
            "office_location",
            "r_disposal_type",
        ] {
            let mut sink = PgSink::new("delius").unwrap();
            sink.stage(RowChange::Upsert {
                table,
                key: Key::Code("X".into()),
                values: columns!({ "code": "X" }),
            });
            assert!(sink.changes_reference(), "{table}");
        }
    }

    fn kinds(encoded: &Encoded) -> Vec<String> {
        encoded
            .statements
            .iter()
            .map(|statement| match statement {
                Statement::Query(sql, _) => sql.split_whitespace().next().unwrap().to_string(),
                Statement::Copy(sql, data) => {
                    format!("{sql} [{}]", String::from_utf8_lossy(data).trim_end())
                }
            })
            .collect()
    }

    #[test]
    fn a_shadow_whose_column_types_are_known_copies_in_binary_unless_a_value_refuses() {
        let mut shadow = ShadowRows::default();
        let contact = shadow.types.entry("contact".into()).or_default();
        contact.insert("contact_id".into(), ColumnType::Int8);
        contact.insert("notes".into(), ColumnType::Text);
        let mut sink = PgSink::new("shadow").unwrap();
        sink.stage(upsert("contact", 1, "one"));
        let encoded = sink.encode_for_shadow(&mut shadow).unwrap();
        let [Statement::Copy(sql, data)] = encoded.statements.as_slice() else {
            panic!("one COPY: {:?}", kinds(&encoded));
        };
        assert_eq!(
            sql,
            "COPY \"shadow\".\"contact\" (\"contact_id\", \"notes\") FROM STDIN WITH (FORMAT binary)"
        );
        assert_eq!(
            Some(data.clone()),
            copy_binary::encode(
                &[columns!({ "contact_id": 1, "notes": "one" })],
                &[ColumnType::Int8, ColumnType::Text]
            )
        );
        // An array is never copied (it takes the upsert); an object in a text column cannot
        // be written in binary, so its set goes as text.
        sink.stage(upsert("contact", 2, "two"));
        for (id, notes) in [(3, json!(["not", "text"])), (4, json!({ "an": "object" }))] {
            let mut values = columns!({ "contact_id": id });
            values.insert("notes", notes);
            sink.stage(RowChange::upsert("contact", id, values));
        }
        assert_eq!(
            kinds(&sink.encode_for_shadow(&mut shadow).unwrap()),
            [
                "INSERT",
                "COPY \"shadow\".\"contact\" (\"contact_id\", \"notes\") FROM STDIN [2\ttwo\n4\t{\"an\":\"object\"}]"
            ]
        );
        // A column whose type it does not know: text.
        sink.stage(RowChange::upsert(
            "contact",
            5,
            columns!({ "contact_id": 5, "outcome_code": "X" }),
        ));
        assert_eq!(
            kinds(&sink.encode_for_shadow(&mut shadow).unwrap()),
            ["COPY \"shadow\".\"contact\" (\"contact_id\", \"outcome_code\") FROM STDIN [5\tX]"]
        );
    }

    #[test]
    fn a_shadow_sink_copies_first_writes_and_upserts_the_rest() {
        let mut shadow = ShadowRows::default();
        let mut sink = PgSink::new("shadow").unwrap();
        sink.stage(upsert("contact", 1, "one"));
        sink.stage(upsert("contact", 2, "two"));
        // Merged with the first: still one new row.
        sink.stage(upsert("contact", 1, "one again"));
        let first = sink.encode_for_shadow(&mut shadow).unwrap();
        assert_eq!(
            kinds(&first),
            [
                "COPY \"shadow\".\"contact\" (\"contact_id\", \"notes\") FROM STDIN [1\tone again\n2\ttwo]"
            ]
        );
        assert_eq!(shadow.len(), 2);
        // Row 1 is now held: its next upsert may update. Row 3 is new.
        sink.stage(upsert("contact", 1, "later"));
        sink.stage(upsert("contact", 3, "three"));
        let second = sink.encode_for_shadow(&mut shadow).unwrap();
        assert_eq!(
            kinds(&second),
            [
                "INSERT".to_string(),
                "COPY \"shadow\".\"contact\" (\"contact_id\", \"notes\") FROM STDIN [3\tthree]"
                    .to_string()
            ]
        );
        // A deleted row's next upsert is a first write again; an update never copies.
        sink.stage(RowChange::Delete {
            table: "contact",
            key: Key::Id(2),
        });
        sink.stage(upsert("contact", 2, "back"));
        sink.stage(RowChange::update(
            "contact",
            9,
            columns!({ "notes": "none" }),
        ));
        let third = sink.encode_for_shadow(&mut shadow).unwrap();
        assert_eq!(
            kinds(&third),
            [
                "DELETE".to_string(),
                "UPDATE".to_string(),
                "COPY \"shadow\".\"contact\" (\"contact_id\", \"notes\") FROM STDIN [2\tback]"
                    .to_string()
            ]
        );
        assert_eq!(shadow.len(), 3);
    }

    #[test]
    fn a_change_to_a_table_the_projection_lacks_fails_the_encoding_and_stages_nothing() {
        let mut sink = PgSink::new("delius").unwrap();
        sink.stage(upsert("contact", 1, "kept out"));
        sink.stage(RowChange::upsert(
            "contacts",
            2,
            columns!({ "notes": "typo" }),
        ));
        sink.stage(upsert("contact", 3, "kept out too"));
        assert!(matches!(
            sink.encode(),
            Err(ProjectionError::Identifier(table)) if table == "contacts"
        ));
        // Nothing of the failed batch is left to write with the next one.
        assert!(sink.encode().unwrap().statements.is_empty());
    }

    fn queries(encoded: &Encoded) -> Vec<(String, Vec<String>)> {
        encoded
            .statements
            .iter()
            .map(|statement| match statement {
                Statement::Query(sql, params) => (sql.clone(), params.clone()),
                Statement::Copy(sql, _) => (sql.clone(), Vec::new()),
            })
            .collect()
    }

    fn trailer(n: usize) -> (String, Vec<String>) {
        (format!("UPDATE t SET v = ${n}::bigint"), vec!["7".into()])
    }

    #[test]
    fn a_plain_literal_needs_no_escaping_or_is_refused() {
        assert_eq!(
            plain_literal("projector-swap:delius").unwrap(),
            "'projector-swap:delius'"
        );
        assert!(plain_literal("it's").is_err());
        assert!(plain_literal("back\\slash").is_err());
    }

    #[test]
    fn a_trailer_joins_the_last_statement_or_comes_alone() {
        // One sub-statement: wrapped in a WITH with the trailer.
        let mut sink = PgSink::new("delius").unwrap();
        sink.stage(upsert("contact", 1, "one"));
        let one = queries(&sink.encode().unwrap().with_trailer(trailer));
        assert_eq!(one.len(), 1);
        assert!(one[0]
            .0
            .starts_with("WITH main AS (INSERT INTO \"delius\".\"contact\""));
        assert!(one[0]
            .0
            .ends_with("), trailer AS (UPDATE t SET v = $2::bigint) SELECT 1"));
        assert_eq!(one[0].1.len(), 2);
        assert_eq!(one[0].1[1], "7");
        // Several: one more CTE of the same statement, numbered after its parameters.
        sink.stage(upsert("contact", 1, "one"));
        sink.stage(RowChange::update("nsi", 2, columns!({ "notes": "n" })));
        let combined = queries(&sink.encode().unwrap().with_trailer(trailer));
        assert_eq!(combined.len(), 1);
        assert!(combined[0].0.starts_with("WITH w0 AS ("));
        assert!(combined[0]
            .0
            .ends_with(", trailer AS (UPDATE t SET v = $3::bigint) SELECT 1"));
        assert_eq!(combined[0].1.len(), 3);
        // Nothing staged: the trailer alone.
        let alone = queries(&sink.encode().unwrap().with_trailer(trailer));
        assert_eq!(
            alone,
            [(
                "UPDATE t SET v = $1::bigint".to_string(),
                vec!["7".to_string()]
            )]
        );
    }

    #[test]
    fn an_id_set_holds_each_table_and_id_apart() {
        let mut set = IdSet::default();
        let ids = [
            0,
            1,
            511,
            512,
            513,
            1023,
            -1,
            -512,
            -513,
            i64::MAX,
            i64::MIN,
            100_001,
        ];
        for id in ids {
            assert!(set.insert((3, id)), "{id}");
            assert!(!set.insert((3, id)), "{id} twice");
        }
        assert_eq!(set.len, ids.len());
        for id in ids {
            assert!(set.contains((3, id)), "{id}");
            assert!(!set.contains((4, id)), "{id} in another table");
        }
        for id in [2, 510, 514, -2, -511, 100_000, 100_002] {
            assert!(!set.contains((3, id)), "{id} never added");
        }
        set.remove((3, 512));
        set.remove((3, 512));
        set.remove((4, 1));
        assert!(!set.contains((3, 512)));
        assert!(set.contains((3, 513)) && set.contains((3, 511)));
        assert_eq!(set.len, ids.len() - 1);
    }

    #[test]
    fn reference_rows_arrays_and_json_columns_are_never_copied() {
        let mut shadow = ShadowRows::default();
        shadow
            .not_copyable
            .push(("contact".to_string(), "detail".to_string()));
        let mut sink = PgSink::new("shadow").unwrap();
        sink.stage(RowChange::upsert(
            "team",
            "N07T01",
            columns!({ "code": "N07T01" }),
        ));
        sink.stage(RowChange::upsert(
            "contact",
            1,
            columns!({ "contact_id": 1, "detail": "x" }),
        ));
        sink.stage(RowChange::upsert(
            "contact",
            2,
            columns!({ "contact_id": 2, "codes": ["a"] }),
        ));
        let encoded = sink.encode_for_shadow(&mut shadow).unwrap();
        assert_eq!(kinds(&encoded), ["WITH"]);
        // Written by the upsert all the same: known from now on.
        assert_eq!(shadow.len(), 2);
        // The plain encoding never copies.
        sink.stage(upsert("contact", 5, "five"));
        assert_eq!(kinds(&sink.encode().unwrap()), ["INSERT"]);
    }
}
