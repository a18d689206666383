//! The reference codes Delius knows, to validate a seed before anything is loaded: the
//! national codes of the migration `0003_reference_data.sql` (read from its SQL, so that the
//! embedded default needs no database) plus the additions already seeded.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use crate::engine::{Backend, Engine};

/// The migration that loads the national codes.
pub const REFERENCE_SQL: &str = include_str!("../../schema/0003_reference_data.sql");

/// Codes per `delius` table, and the sentence type of each disposal type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownCodes {
    codes: BTreeMap<String, BTreeSet<String>>,
    sentence_types: BTreeMap<String, String>,
}

/// The code tables a seed may refer to.
pub const CODE_TABLES: &[&str] = &[
    "r_contact_type",
    "r_contact_outcome_type",
    "r_nsi_type",
    "r_nsi_status",
    "r_nsi_outcome",
    "r_enforcement_action",
    "r_disposal_type",
    "r_requirement_main_category",
    "r_licence_condition_main_category",
    "r_custodial_status",
    "r_custody_event_type",
    "r_release_type",
    "r_recall_reason",
    "r_termination_reason",
    "r_key_date_type",
    "r_pom_allocation_reason",
    "r_transfer_reason",
    "r_institution",
    "probation_area",
    "pdu",
    "team",
    "staff",
    "office_location",
];

impl KnownCodes {
    /// The codes the migration loads.
    pub fn from_migrations() -> Self {
        let mut known = Self::default();
        for (table, row) in parse_reference_rows(REFERENCE_SQL) {
            if let Some(Some(code)) = row.get("code") {
                if table == "r_disposal_type" {
                    if let Some(Some(sentence_type)) = row.get("sentence_type") {
                        known
                            .sentence_types
                            .insert(code.clone(), sentence_type.clone());
                    }
                }
                known.insert(&table, code.clone());
            }
        }
        known
    }

    /// The codes the engine's Delius holds now.
    pub async fn for_engine(engine: &Engine) -> Result<Self, sqlx::Error> {
        match &engine.backend {
            Backend::Postgres(pool) => {
                let mut known = Self::default();
                for table in CODE_TABLES {
                    let rows = sqlx::query(&format!("SELECT code FROM delius.{table}"))
                        .fetch_all(pool)
                        .await?;
                    for row in rows {
                        known.insert(table, row.try_get::<String, _>(0)?);
                    }
                }
                let types: Vec<(String, Option<String>)> =
                    sqlx::query_as("SELECT code, sentence_type FROM delius.r_disposal_type")
                        .fetch_all(pool)
                        .await?;
                for (code, sentence_type) in types {
                    if let Some(sentence_type) = sentence_type {
                        known.sentence_types.insert(code, sentence_type);
                    }
                }
                Ok(known)
            }
            Backend::Memory { tables, .. } => {
                let mut known = Self::from_migrations();
                if let Ok(tables) = tables.read() {
                    for table in CODE_TABLES {
                        for row in tables.rows(table) {
                            if let Some(code) = row.get("code").and_then(|c| c.as_str()) {
                                known.insert(table, code.to_string());
                                if let Some(t) = row.get("sentence_type").and_then(|t| t.as_str()) {
                                    known.sentence_types.insert(code.to_string(), t.to_string());
                                }
                            }
                        }
                    }
                }
                Ok(known)
            }
        }
    }

    /// Adds a code.
    pub fn insert(&mut self, table: &str, code: String) {
        self.codes
            .entry(table.to_string())
            .or_default()
            .insert(code);
    }

    /// Whether `table` holds `code`.
    pub fn contains(&self, table: &str, code: &str) -> bool {
        self.codes
            .get(table)
            .is_some_and(|codes| codes.contains(code))
    }

    /// Records the sentence type of a disposal type.
    pub fn insert_sentence_type(&mut self, disposal_type: &str, sentence_type: String) {
        self.sentence_types
            .insert(disposal_type.to_string(), sentence_type);
    }

    /// The sentence type (`SC`, `NC`…) of a disposal type.
    pub fn sentence_type(&self, disposal_type: &str) -> Option<&String> {
        self.sentence_types.get(disposal_type)
    }

    /// How many codes a table holds.
    pub fn count(&self, table: &str) -> usize {
        self.codes.get(table).map_or(0, BTreeSet::len)
    }
}

/// Reads `(table, code)` pairs from `INSERT INTO delius.t (code, …) VALUES (…), (…);`
/// statements. Comments and quoted strings are understood.
pub fn parse_reference_sql(sql: &str) -> Vec<(String, String)> {
    parse_reference_rows(sql)
        .into_iter()
        .filter_map(|(table, row)| row.get("code").cloned().flatten().map(|code| (table, code)))
        .collect()
}

/// A row of an INSERT statement: column name to value (`None` for NULL).
pub type SqlRow = BTreeMap<String, Option<String>>;

/// Reads every row of the `INSERT INTO delius.t (columns) VALUES (…), (…);` statements of
/// `sql`, as text (strings unquoted, other literals as written, NULL as `None`).
pub fn parse_reference_rows(sql: &str) -> Vec<(String, SqlRow)> {
    let tokens = tokenize(sql);
    let mut rows = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_insert = matches!(&tokens[i], Token::Word(w) if w.eq_ignore_ascii_case("insert"));
        let target = match (is_insert, tokens.get(i + 2), tokens.get(i + 3)) {
            (true, Some(Token::Word(target)), Some(Token::Open)) => target.clone(),
            _ => {
                i += 1;
                continue;
            }
        };
        let table = target.rsplit('.').next().unwrap_or(&target).to_string();
        let mut columns = Vec::new();
        let mut j = i + 4;
        while j < tokens.len() && tokens[j] != Token::Close {
            if let Token::Word(column) = &tokens[j] {
                columns.push(column.clone());
            }
            j += 1;
        }
        j += 1;
        let mut depth = 0;
        let mut values: Vec<Option<String>> = Vec::new();
        while j < tokens.len() && tokens[j] != Token::Semicolon {
            match &tokens[j] {
                Token::Open => {
                    depth += 1;
                    if depth == 1 {
                        values.clear();
                    }
                }
                Token::Close => {
                    depth -= 1;
                    if depth == 0 {
                        let row = columns.iter().cloned().zip(values.drain(..)).collect();
                        rows.push((table.clone(), row));
                    }
                }
                Token::Str(value) if depth == 1 => values.push(Some(value.clone())),
                Token::Word(word) if depth == 1 => {
                    values.push((!word.eq_ignore_ascii_case("null")).then(|| word.clone()))
                }
                _ => {}
            }
            j += 1;
        }
        i = j;
    }
    rows
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
    Semicolon,
}

fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\'' => {
                let mut value = String::new();
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            value.push('\'');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
                tokens.push(Token::Str(value));
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ';' => {
                tokens.push(Token::Semicolon);
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | ',' | ';' | '\'')
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codes_from_insert_statements() {
        let sql = "-- header\nINSERT INTO delius.r_release_type (code, description) VALUES\n  -- a comment\n  ('ADL', 'Adult Licence'),\n  ('O''X', 'Quote (x)');\nINSERT INTO delius.team (code, description, probation_area_code) VALUES ('CRSUAT', 'CRS', 'CRS');";
        assert_eq!(
            parse_reference_sql(sql),
            vec![
                ("r_release_type".to_string(), "ADL".to_string()),
                ("r_release_type".to_string(), "O'X".to_string()),
                ("team".to_string(), "CRSUAT".to_string()),
            ]
        );
    }

    #[test]
    fn the_migration_loads_the_codes_the_rules_need() {
        let known = KnownCodes::from_migrations();
        for (table, code) in [
            ("r_contact_type", "CRSAPT"),
            ("r_contact_type", "EREL"),
            ("r_custodial_status", "B"),
            ("r_release_type", "ADL"),
            ("r_recall_reason", "NN"),
            ("r_institution", "XXX056"),
            ("r_key_date_type", "POM2"),
            ("staff", "CRSUATU"),
        ] {
            assert!(known.contains(table, code), "{table} lacks {code}");
        }
        assert_eq!(known.sentence_type("SC").map(String::as_str), Some("SC"));
        assert_eq!(known.sentence_type("ORA").map(String::as_str), Some("NC"));
        assert_eq!(known.sentence_type("326").map(String::as_str), Some("NC"));
    }

    #[test]
    fn domain_outcome_flags_equal_the_migrations() {
        use aggregates::diary::outcome;
        let rows = parse_reference_rows(REFERENCE_SQL);
        let flag = |value: &Option<String>| value.as_deref().map(|v| v == "true");
        let mut checked = 0;
        for (table, row) in rows {
            if table != "r_contact_outcome_type" {
                continue;
            }
            let code = row["code"].clone().unwrap();
            let expected = (
                flag(&row["outcome_attendance"]),
                flag(&row["outcome_compliant_acceptable"]),
            );
            if outcome::flags(&code) != (None, None) {
                assert_eq!(outcome::flags(&code), expected, "{code}");
                checked += 1;
            }
        }
        assert_eq!(
            checked, 8,
            "every outcome the domain uses is in the migration"
        );
    }

    #[test]
    fn reads_whole_rows_with_nulls_and_numbers() {
        let sql = "INSERT INTO delius.r_disposal_type (code, description, sentence_type, ftc_limit) VALUES ('SC', 'Custody', 'SC', 3), ('X', 'None', NULL, NULL);";
        let rows = parse_reference_rows(sql);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1["ftc_limit"].as_deref(), Some("3"));
        assert_eq!(rows[1].1["sentence_type"], None);
    }
}
