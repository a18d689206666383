//! A sink that keeps projected tables in memory: the embedded default (`demo`, `serve`
//! without a database) and fast tests. Same semantics as the PostgreSQL sink.

use std::collections::BTreeMap;

use crate::log::{DecodeError, RecordedEvent};
use crate::rows::{self, Columns, Key, RowChange, Stamp, INSERT_ONLY_COLUMNS};

/// Projected tables held in memory, keyed by table name then row key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryTables {
    tables: BTreeMap<&'static str, BTreeMap<Key, Columns>>,
}

impl MemoryTables {
    /// Applies one (stamped) row change.
    pub fn apply(&mut self, change: RowChange) {
        match change {
            RowChange::Upsert { table, key, values } => {
                let rows = self.tables.entry(table).or_default();
                match rows.get_mut(&key) {
                    Some(row) => {
                        for (column, value) in values {
                            if !INSERT_ONLY_COLUMNS.contains(&column) {
                                row.insert(column, value);
                            }
                        }
                    }
                    None => {
                        rows.insert(key, values);
                    }
                }
            }
            RowChange::Update { table, key, values } => {
                if let Some(row) = self
                    .tables
                    .get_mut(table)
                    .and_then(|rows| rows.get_mut(&key))
                {
                    row.extend(values);
                }
            }
            RowChange::Delete { table, key } => {
                if let Some(rows) = self.tables.get_mut(table) {
                    rows.remove(&key);
                }
            }
        }
    }

    /// Projects one recorded event into the tables.
    pub fn apply_event(&mut self, event: &RecordedEvent) -> Result<(), DecodeError> {
        let decoded = event.decode()?;
        let metadata = event.metadata()?;
        let stamp = Stamp {
            position: event.global_position,
            at: metadata.received_at,
            user: metadata.actor,
        };
        let stamp = stamp.values();
        for change in crate::delius::project(&decoded) {
            self.apply(rows::stamp_with(change, &stamp));
        }
        Ok(())
    }

    /// The rows of a table in key order.
    pub fn rows(&self, table: &str) -> Vec<&Columns> {
        self.tables
            .get(table)
            .map(|rows| rows.values().collect())
            .unwrap_or_default()
    }

    /// One row by key.
    pub fn row(&self, table: &str, key: &Key) -> Option<&Columns> {
        self.tables.get(table).and_then(|rows| rows.get(key))
    }

    /// The names of tables holding at least one row.
    pub fn table_names(&self) -> Vec<&'static str> {
        self.tables
            .iter()
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(name, _)| *name)
            .collect()
    }
}
