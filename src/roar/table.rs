//! ROAR's results: one CSV row per retrained network, appended and synced as each one
//! finishes (a killed run loses at most the network in training), read back to resume,
//! merged across shards, and summarised as mean ± standard deviation per estimator and
//! fraction.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use super::{Result, RoarError};
use crate::export::text_table::render;

/// The estimator name of the networks retrained on unmodified data (the curves' common
/// end: fraction 0 under ROAR, 1 under KAR).
pub const UNMODIFIED: &str = "unmodified";

const HEADER: [&str; 10] = [
    "dataset",
    "mode",
    "removal",
    "estimator",
    "fraction",
    "retrain",
    "seed",
    "test_accuracy",
    "train_accuracy",
    "seconds",
];

/// One retrained network.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub dataset: String,
    /// `roar` or `kar`.
    pub mode: String,
    /// `mean` or `road`.
    pub removal: String,
    pub estimator: String,
    pub fraction: f64,
    pub retrain: usize,
    pub seed: u64,
    pub test_accuracy: f64,
    pub train_accuracy: f64,
    pub seconds: f64,
}

/// What makes a row unique in a run: the cell it fills.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    pub estimator: String,
    /// The fraction in millionths (exact in a key).
    pub fraction_ppm: u64,
    pub retrain: usize,
}

impl CellKey {
    pub fn new(estimator: &str, fraction: f64, retrain: usize) -> Self {
        Self {
            estimator: estimator.to_string(),
            fraction_ppm: (fraction * 1e6).round() as u64,
            retrain,
        }
    }
}

impl Row {
    pub fn key(&self) -> CellKey {
        CellKey::new(&self.estimator, self.fraction, self.retrain)
    }

    /// The settings a row shares with every other row of its run.
    pub fn run(&self) -> (String, String, String, u64) {
        (self.dataset.clone(), self.mode.clone(), self.removal.clone(), self.seed)
    }

    fn record(&self) -> [String; 10] {
        [
            self.dataset.clone(),
            self.mode.clone(),
            self.removal.clone(),
            self.estimator.clone(),
            format!("{}", self.fraction),
            self.retrain.to_string(),
            self.seed.to_string(),
            format!("{}", self.test_accuracy),
            format!("{}", self.train_accuracy),
            format!("{:.3}", self.seconds),
        ]
    }
}

/// The rows of a results file. A last line cut short by a kill is dropped (and, with
/// `repair`, cut from the file so appending continues on a line of its own).
pub fn read_rows(path: &Path, repair: bool) -> Result<Vec<Row>> {
    let io = |source| RoarError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if complete < bytes.len() && repair {
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(complete as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    let bad = |line: usize, message: String| RoarError::Dataset {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(&bytes[..complete]);
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(bad(
            1,
            format!("not a ROAR results file (expected the columns {})", HEADER.join(",")),
        ));
    }
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.map_err(|e| bad(line, e.to_string()))?;
        let field = |i: usize| record.get(i).unwrap_or_default();
        let number = |i: usize| {
            field(i)
                .parse::<f64>()
                .map_err(|_| bad(line, format!("{} `{}` is not a number", HEADER[i], field(i))))
        };
        let integer = |i: usize| {
            field(i)
                .parse::<u64>()
                .map_err(|_| bad(line, format!("{} `{}` is not a whole number", HEADER[i], field(i))))
        };
        rows.push(Row {
            dataset: field(0).to_string(),
            mode: field(1).to_string(),
            removal: field(2).to_string(),
            estimator: field(3).to_string(),
            fraction: number(4)?,
            retrain: integer(5)? as usize,
            seed: integer(6)?,
            test_accuracy: number(7)?,
            train_accuracy: number(8)?,
            seconds: number(9)?,
        });
    }
    Ok(rows)
}

/// Appends rows to a results file, each synced to disk before the next cell starts.
pub struct RowWriter {
    file: File,
    path: PathBuf,
}

impl RowWriter {
    /// Opens `path` for appending, writing the header when the file is new or empty.
    pub fn append_to(path: &Path) -> Result<Self> {
        let io = |source| RoarError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        if file.seek(std::io::SeekFrom::End(0)).map_err(io)? == 0 {
            file.write_all(format!("{}\n", HEADER.join(",")).as_bytes())
                .and_then(|_| file.sync_data())
                .map_err(io)?;
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn append(&mut self, row: &Row) -> Result<()> {
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        writer.write_record(row.record()).map_err(|e| RoarError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let line = writer.into_inner().map_err(|e| RoarError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .map_err(|source| RoarError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// The rows of several files (shards) as one run, sorted by cell; a cell found twice
/// with different results, or rows of different runs, are errors.
pub fn merge(inputs: &[PathBuf]) -> Result<Vec<Row>> {
    let mut by_key: BTreeMap<CellKey, Row> = BTreeMap::new();
    let mut run = None;
    for path in inputs {
        for row in read_rows(path, false)? {
            match &run {
                None => run = Some(row.run()),
                Some(r) if *r != row.run() => {
                    return Err(RoarError::Dataset {
                        path: path.clone(),
                        message: format!(
                        "its rows come from another run ({} {} {} seed {}) than the first file's ({} {} {} seed {})",
                        row.dataset, row.mode, row.removal, row.seed, r.0, r.1, r.2, r.3
                    ),
                    })
                }
                Some(_) => {}
            }
            let key = row.key();
            match by_key.get(&key) {
                Some(old) if old.test_accuracy != row.test_accuracy => {
                    return Err(RoarError::Dataset {
                        path: path.clone(),
                        message: format!(
                            "{} at {} (retrain {}) has accuracy {} here and {} in an earlier file",
                            row.estimator, row.fraction, row.retrain, row.test_accuracy, old.test_accuracy
                        ),
                    })
                }
                Some(_) => {}
                None => {
                    by_key.insert(key, row);
                }
            }
        }
    }
    Ok(by_key.into_values().collect())
}

/// Writes `rows` as a complete results file (through a temporary file, then renamed).
pub fn write_rows(path: &Path, rows: &[Row]) -> Result<()> {
    let temporary = path.with_extension("csv.partial");
    {
        let _ = std::fs::remove_file(&temporary);
        let mut writer = RowWriter::append_to(&temporary)?;
        for row in rows {
            writer.append(row)?;
        }
    }
    std::fs::rename(&temporary, path).map_err(|source| RoarError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The cells already filled.
pub fn done_cells(rows: &[Row]) -> HashSet<CellKey> {
    rows.iter().map(Row::key).collect()
}

/// Mean and sample standard deviation of one estimator at one fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub mean: f64,
    pub std: f64,
    pub retrains: usize,
}

/// Test accuracy per estimator (in the order first seen) and fraction.
pub fn summarize(rows: &[Row]) -> Vec<(String, BTreeMap<u64, Cell>)> {
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<(String, u64), Vec<f64>> = BTreeMap::new();
    for row in rows {
        if !order.contains(&row.estimator) {
            order.push(row.estimator.clone());
        }
        values
            .entry((row.estimator.clone(), row.key().fraction_ppm))
            .or_default()
            .push(row.test_accuracy);
    }
    order
        .into_iter()
        .map(|estimator| {
            let cells = values
                .iter()
                .filter(|((e, _), _)| *e == estimator)
                .map(|((_, f), v)| (*f, mean_std(v)))
                .collect();
            (estimator, cells)
        })
        .collect()
}

fn mean_std(values: &[f64]) -> Cell {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    let var = if n > 1 {
        values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    Cell {
        mean,
        std: var.sqrt(),
        retrains: n,
    }
}

/// The summary as a table: a row per estimator, a column per fraction, `mean ± std`
/// test accuracy in percent; Markdown or aligned text.
pub fn summary_table(rows: &[Row], titles: &dyn Fn(&str) -> String, markdown: bool) -> String {
    let summary = summarize(rows);
    let mut fractions: Vec<u64> = summary.iter().flat_map(|(_, c)| c.keys().copied()).collect();
    fractions.sort_unstable();
    fractions.dedup();
    let mut header = vec!["estimator".to_string()];
    header.extend(fractions.iter().map(|f| format!("{:.0} %", *f as f64 / 1e4)));
    let mut table: Vec<Vec<String>> = vec![header];
    for (estimator, cells) in &summary {
        let mut line = vec![titles(estimator)];
        for f in &fractions {
            line.push(match cells.get(f) {
                Some(c) if c.retrains > 1 => format!("{:.1} ± {:.1}", 100.0 * c.mean, 100.0 * c.std),
                Some(c) => format!("{:.1}", 100.0 * c.mean),
                None => String::new(),
            });
        }
        table.push(line);
    }
    render(&table, markdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(estimator: &str, fraction: f64, retrain: usize, accuracy: f64) -> Row {
        Row {
            dataset: "digits".into(),
            mode: "roar".into(),
            removal: "mean".into(),
            estimator: estimator.into(),
            fraction,
            retrain,
            seed: 0,
            test_accuracy: accuracy,
            train_accuracy: 1.0,
            seconds: 1.0,
        }
    }

    #[test]
    fn rows_survive_a_cut_last_line_and_read_back_exactly() {
        let dir = std::env::temp_dir().join(format!("pathscope-roar-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.csv");
        let _ = std::fs::remove_file(&path);
        let rows = vec![row("ig", 0.1, 0, 0.1 + 0.2), row("a,\"b", 0.3, 1, 0.5)];
        let mut w = RowWriter::append_to(&path).unwrap();
        for r in &rows {
            w.append(r).unwrap();
        }
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"digits,roar,mean,ig,0.5,0,0,0.9");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_rows(&path, true).unwrap(), rows);
        assert!(std::fs::read(&path).unwrap().ends_with(b"\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_summary_is_mean_and_sample_std() {
        let rows = vec![row("ig", 0.1, 0, 0.5), row("ig", 0.1, 1, 0.7), row("ig", 0.3, 0, 0.2)];
        let s = summarize(&rows);
        let c = s[0].1[&100_000];
        assert!((c.mean - 0.6).abs() < 1e-12 && (c.std - 0.02f64.sqrt()).abs() < 1e-12);
        let table = summary_table(&rows, &|e| e.to_uppercase(), true);
        assert!(table.contains("| IG        | 60.0 ± 14.1 | 20.0 |"), "{table}");
    }
}
