//! Test data tables: loaded once (inline rows, inline CSV, CSV/JSON files), shared read-only by
//! every VU, with k6-style row selection (sequential, random, unique across runners, per VU).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use stampede_crds::spec::{DataFormat, DataSelect, DataSource, LoadTestSpec};

use crate::schedule::ExecutionSegment;

/// Why test data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read.
    #[error("spec.data.{table}.file: cannot read {path}: {source}")]
    Read {
        /// Table name.
        table: String,
        /// File path.
        path: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// The rows are malformed.
    #[error("spec.data.{table}: {message}")]
    Malformed {
        /// Table name.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// A ConfigMap table outside a cluster.
    #[error(
        "spec.data.{table}.configMapRef: ConfigMaps are read in a cluster only; for `stampede run` give the rows with `file:` or `rows:`"
    )]
    NeedsCluster {
        /// Table name.
        table: String,
    },
}

/// One loaded table.
#[derive(Debug)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    select: DataSelect,
    next: AtomicU64,
}

impl Table {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value of `column` in row `row`.
    pub fn value(&self, row: usize, column: &str) -> Option<&str> {
        let index = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row)?.get(index).map(String::as_str)
    }
}

/// Every table of a test, in a fixed order (a VU keeps one current row index per table).
#[derive(Debug, Default)]
pub struct Tables {
    names: Vec<String>,
    tables: Vec<Table>,
    by_name: HashMap<String, usize>,
}

impl Tables {
    /// Loads the tables of `spec`; files are relative to `base_dir`.
    pub fn load(spec: &LoadTestSpec, base_dir: &Path) -> Result<Tables, DataError> {
        let mut tables = Tables::default();
        for (name, source) in &spec.data {
            let (columns, rows) = load_rows(name, source, base_dir)?;
            if rows.is_empty() {
                return Err(DataError::Malformed {
                    table: name.clone(),
                    message: "has no rows; add at least one".into(),
                });
            }
            tables.by_name.insert(name.clone(), tables.tables.len());
            tables.names.push(name.clone());
            tables.tables.push(Table {
                columns,
                rows,
                select: source.select.unwrap_or(DataSelect::Sequential),
                next: AtomicU64::new(0),
            });
        }
        Ok(tables)
    }

    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True when the test has no data.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The value of `table.column` given the VU's current rows.
    pub fn value(&self, table: &str, column: &str, rows: &[usize]) -> Option<&str> {
        let index = *self.by_name.get(table)?;
        self.tables[index].value(*rows.get(index)?, column)
    }

    /// Picks this iteration's row of every table into `rows`. Returns false when a `unique`
    /// table has run out of rows (the VU then stops: every row is used at most once).
    pub fn select(
        &self,
        rows: &mut Vec<usize>,
        vu: u64,
        iteration_in_test: u64,
        segment: &ExecutionSegment,
        rng: &mut fastrand::Rng,
    ) -> bool {
        rows.resize(self.tables.len(), 0);
        for (slot, table) in rows.iter_mut().zip(&self.tables) {
            let count = table.rows.len() as u64;
            *slot = match table.select {
                DataSelect::Sequential => (iteration_in_test % count) as usize,
                DataSelect::Random => rng.usize(..table.rows.len()),
                DataSelect::PerVu => ((vu.saturating_sub(1)) % count) as usize,
                DataSelect::Unique => {
                    // This runner takes the rows its execution segment owns, so rows are
                    // unique across all runners of the test.
                    let k = table.next.fetch_add(1, Ordering::Relaxed);
                    let row = segment.nth_owned(k);
                    if row >= count {
                        return false;
                    }
                    row as usize
                }
            };
        }
        true
    }
}

fn load_rows(
    table: &str,
    source: &DataSource,
    base_dir: &Path,
) -> Result<(Vec<String>, Vec<Vec<String>>), DataError> {
    let malformed = |message: String| DataError::Malformed {
        table: table.to_string(),
        message,
    };
    if !source.rows.is_empty() {
        let columns: Vec<String> = source.rows[0].keys().cloned().collect();
        let rows = source
            .rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|c| row.get(c).cloned().unwrap_or_default())
                    .collect()
            })
            .collect();
        return Ok((columns, rows));
    }
    if let Some(text) = &source.csv {
        return parse_csv(text).map_err(malformed);
    }
    if let Some(file) = &source.file {
        let path = base_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|error| DataError::Read {
            table: table.to_string(),
            path: path.display().to_string(),
            source: error,
        })?;
        let is_json = match source.format {
            Some(DataFormat::Json) => true,
            Some(DataFormat::Csv) => false,
            None => file.ends_with(".json"),
        };
        return if is_json {
            parse_json(&text)
        } else {
            parse_csv(&text)
        }
        .map_err(malformed);
    }
    Err(DataError::NeedsCluster {
        table: table.to_string(),
    })
}

/// Parses CSV text with a header line.
pub fn parse_csv(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| format!("bad CSV header: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("bad CSV row {}: {e}", index + 1))?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok((columns, rows))
}

/// Parses a JSON array of objects (values rendered as text).
pub fn parse_json(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
    let items = value
        .as_array()
        .ok_or("must be a JSON array of objects, e.g. [{\"username\": \"alice\"}]")?;
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        for key in item
            .as_object()
            .ok_or("every item must be an object")?
            .keys()
        {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let rows = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| match item.get(c) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                })
                .collect()
        })
        .collect();
    Ok((columns, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_csv_and_json_rows() {
        let (columns, rows) = parse_csv("username, password\nalice,\"se,cret\"\nbob,x\n").unwrap();
        assert_eq!(columns, ["username", "password"]);
        assert_eq!(rows[0], ["alice", "se,cret"]);
        let (columns, rows) = parse_json(r#"[{"id": 7, "name": "a"}, {"name": "b"}]"#).unwrap();
        assert_eq!(columns, ["id", "name"]);
        assert_eq!(rows[1], ["", "b"]);
        assert!(parse_json("{}").is_err());
    }

    #[test]
    fn unique_rows_are_used_once_across_segments() {
        let spec: LoadTestSpec = serde_yaml_ng::from_str(
            "data: {users: {csv: \"u\\n1\\n2\\n3\\n4\\n5\", select: unique}}",
        )
        .unwrap();
        let mut seen = Vec::new();
        for index in 0..2 {
            let tables = Tables::load(&spec, Path::new(".")).unwrap();
            let segment = ExecutionSegment::of(index, 2).unwrap();
            let mut rng = fastrand::Rng::with_seed(1);
            let mut rows = Vec::new();
            while tables.select(&mut rows, 1, 0, &segment, &mut rng) {
                seen.push(tables.value("users", "u", &rows).unwrap().to_string());
            }
        }
        seen.sort();
        assert_eq!(seen, ["1", "2", "3", "4", "5"]);
    }
}
