//! The results file of `pathscope eval`: one row per image × method × metric, as CSV or
//! JSON Lines (chosen by the file extension). Rows are appended and flushed after every
//! image × method, so a killed run loses at most the map it was scoring; a resumed run
//! reads the rows back, drops a half-written last line, and skips what is done.

use pathscope::export::text_table::render;
use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub image: String,
    pub model: String,
    pub method: String,
    pub metric: String,
    /// Empty when the metric could not be computed for this image (see `note`).
    pub value: Option<f64>,
    /// Why a value is missing, or what a value needs to be read with.
    pub note: String,
    /// Wall time of the map plus this metric, seconds.
    pub seconds: f64,
}

pub type RowKey = (String, String, String, String);

/// Samples of a PIC curve on [0, 1) (PAIR's num_data_points).
const PIC_SAMPLES: usize = 1000;

impl Row {
    pub fn key(&self) -> RowKey {
        (
            self.image.clone(),
            self.model.clone(),
            self.method.clone(),
            self.metric.clone(),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
        {
            Some(e) if e == "json" || e == "jsonl" => Format::JsonLines,
            _ => Format::Csv,
        }
    }
}

const CSV_HEADER: [&str; 7] = ["image", "model", "method", "metric", "value", "note", "seconds"];

/// Reads every complete row of a results file. A last line without its newline (the
/// process was killed while writing it) is not a row; `repair` cuts it off the file so
/// appending can go on after it.
pub fn read_rows(path: &Path, repair: bool) -> Result<Vec<Row>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read the results file", path.display()))?;
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    if complete < bytes.len() {
        eprintln!(
            "{}: dropping a half-written last line ({} bytes) left by an interrupted run",
            path.display(),
            bytes.len() - complete
        );
        if repair {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("{}: cannot open the results file to repair it", path.display()))?;
            file.set_len(complete as u64)
                .with_context(|| format!("{}: cannot cut off the half-written line", path.display()))?;
        }
    }
    parse_rows(path, &bytes[..complete])
}

fn parse_rows(path: &Path, bytes: &[u8]) -> Result<Vec<Row>> {
    let mut rows = parse_rows_as_stored(path, bytes)?;
    // Files of earlier releases name methods their own way; the table and resuming use
    // the catalog's names.
    for row in &mut rows {
        row.method = super::methods::canonical_name(&row.method);
    }
    Ok(rows)
}

fn parse_rows_as_stored(path: &Path, bytes: &[u8]) -> Result<Vec<Row>> {
    match Format::of(path) {
        Format::JsonLines => BufReader::new(bytes)
            .lines()
            .enumerate()
            .filter(|(_, l)| l.as_ref().map(|l| !l.trim().is_empty()).unwrap_or(true))
            .map(|(i, line)| {
                let line = line.with_context(|| format!("{}: line {} is not text", path.display(), i + 1))?;
                serde_json::from_str(&line)
                    .with_context(|| format!("{}: line {} is not a results row", path.display(), i + 1))
            })
            .collect(),
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
            let header = reader
                .headers()
                .with_context(|| format!("{}: not a CSV results file", path.display()))?
                .clone();
            if !header.is_empty() && header.iter().ne(CSV_HEADER) {
                bail!(
                    "{}: not a pathscope results file (the header is `{}`, expected `{}`)",
                    path.display(),
                    header.iter().collect::<Vec<_>>().join(","),
                    CSV_HEADER.join(",")
                );
            }
            reader
                .deserialize()
                .enumerate()
                .map(|(i, r)| r.with_context(|| format!("{}: row {} is malformed", path.display(), i + 2)))
                .collect()
        }
    }
}

/// Appends rows to a results file, creating it (with the CSV header) if needed.
pub struct RowWriter {
    path: PathBuf,
    file: File,
    format: Format,
}

impl RowWriter {
    pub fn append_to(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create the output folder", parent.display()))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the results file for writing", path.display()))?;
        let format = Format::of(path);
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        if empty && format == Format::Csv {
            file.write_all(format!("{}\n", CSV_HEADER.join(",")).as_bytes())
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            format,
        })
    }

    /// Writes the rows in one write and syncs them to disk.
    pub fn append(&mut self, rows: &[Row]) -> Result<()> {
        let bytes = encode_rows(rows, self.format)?;
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("{}: cannot append results", self.path.display()))
    }
}

fn encode_rows(rows: &[Row], format: Format) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::JsonLines => {
            for r in rows {
                serde_json::to_writer(&mut out, r)?;
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(&mut out);
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
    }
    Ok(out)
}

/// Writes a whole results file atomically (merge).
pub fn write_rows(path: &Path, rows: &[Row]) -> Result<()> {
    let format = Format::of(path);
    let mut bytes = Vec::new();
    if format == Format::Csv {
        bytes.extend_from_slice(format!("{}\n", CSV_HEADER.join(",")).as_bytes());
    }
    bytes.extend(encode_rows(rows, format)?);
    pathscope::export::atomic::write_atomic(path, &bytes).with_context(|| format!("{}: cannot write", path.display()))
}

pub fn done_keys(rows: &[Row]) -> HashSet<RowKey> {
    rows.iter().map(Row::key).collect()
}

/// Only the rows of images that have every method × metric their model has in `rows`, so
/// every cell of a summary averages over the same images (an interrupted run leaves the
/// last image partly scored).
pub fn complete_images_only(rows: Vec<Row>) -> Vec<Row> {
    let mut wanted: BTreeMap<String, HashSet<(String, String)>> = BTreeMap::new();
    let mut have: BTreeMap<(String, String), HashSet<(String, String)>> = BTreeMap::new();
    for r in &rows {
        wanted
            .entry(r.model.clone())
            .or_default()
            .insert((r.method.clone(), r.metric.clone()));
        have.entry((r.model.clone(), r.image.clone()))
            .or_default()
            .insert((r.method.clone(), r.metric.clone()));
    }
    rows.into_iter()
        .filter(|r| have[&(r.model.clone(), r.image.clone())].len() == wanted[&r.model].len())
        .collect()
}

/// Mean ± sample std of each model × method × metric, with counts.
#[derive(Debug, Clone)]
pub struct SummaryCell {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
    pub missing: usize,
    /// PIC metrics: AUC of the per-x median of the images' curves (PAIR's aggregate).
    pub median_curve_auc: Option<f64>,
}

pub fn summarize(rows: &[Row]) -> BTreeMap<(String, String, String), SummaryCell> {
    type Group = (Vec<f64>, usize, Vec<Vec<f64>>, Option<Vec<f64>>);
    let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
    for r in rows {
        let entry = groups
            .entry((r.model.clone(), r.method.clone(), r.metric.clone()))
            .or_default();
        match r.value.filter(|v| v.is_finite()) {
            Some(v) => entry.0.push(v),
            None => entry.1 += 1,
        }
        if let Some(knots) = super::scoring::parse_knots(&r.note) {
            if let Ok((x, y)) = pathscope::metrics::pic::sample_knots(knots, PIC_SAMPLES) {
                entry.2.push(y);
                entry.3 = Some(x);
            }
        }
    }
    groups
        .into_iter()
        .map(|(k, (values, missing, curves, grid))| {
            let median_curve_auc = grid.map(|x| {
                let ys: Vec<&[f64]> = curves.iter().map(|y| y.as_slice()).collect();
                pathscope::metrics::pic::aggregate_samples(&x, &ys, pathscope::metrics::pic::Aggregation::Median).auc
            });
            let n = values.len();
            let mean = if n > 0 {
                values.iter().sum::<f64>() / n as f64
            } else {
                f64::NAN
            };
            let std = if n > 1 {
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            (
                k,
                SummaryCell {
                    mean,
                    std,
                    n,
                    missing,
                    median_curve_auc,
                },
            )
        })
        .collect()
}

/// The summary as a text table: one line per model × method, one column per metric.
pub fn summary_table(rows: &[Row], markdown: bool) -> String {
    let cells = summarize(rows);
    let mut metrics: Vec<String> = Vec::new();
    let mut lines: Vec<(String, String)> = Vec::new();
    for (model, method, metric) in cells.keys() {
        if !metrics.contains(metric) {
            metrics.push(metric.clone());
        }
        let line = (model.clone(), method.clone());
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    // Methods in the order they first appear in the file, not alphabetically.
    let order: Vec<(String, String)> = rows.iter().fold(Vec::new(), |mut acc, r| {
        let k = (r.model.clone(), r.method.clone());
        if !acc.contains(&k) {
            acc.push(k);
        }
        acc
    });
    let metric_order: Vec<String> = rows.iter().fold(Vec::new(), |mut acc, r| {
        if !acc.contains(&r.metric) {
            acc.push(r.metric.clone());
        }
        acc
    });
    let cell_text = |c: Option<&SummaryCell>| match c {
        // Markdown (for documents): PIC cells are PAIR's aggregate with the number of
        // images that had a curve; other cells mean ± std.
        Some(c) if c.n > 0 && markdown => match c.median_curve_auc {
            Some(auc) => format!("{auc:.3} [{}]", c.n),
            None => format!("{:.3} ± {:.3}", c.mean, c.std),
        },
        Some(c) if c.n > 0 => {
            let skipped = if c.missing > 0 {
                format!(" ({} skipped)", c.missing)
            } else {
                String::new()
            };
            match c.median_curve_auc {
                Some(auc) => format!("{auc:.3} (mean {:.3} ± {:.3}){skipped}", c.mean, c.std),
                None => format!("{:.3} ± {:.3}{skipped}", c.mean, c.std),
            }
        }
        Some(c) => format!("n/a ({} skipped)", c.missing),
        None => "-".into(),
    };
    let mut table: Vec<Vec<String>> = vec![["model", "method", "images"]
        .iter()
        .map(|s| s.to_string())
        .chain(metric_order.iter().cloned())
        .collect()];
    for (model, method) in &order {
        let images = metric_order
            .iter()
            .filter_map(|m| cells.get(&(model.clone(), method.clone(), m.clone())))
            .map(|c| c.n + c.missing)
            .max()
            .unwrap_or(0);
        let mut row = vec![model.clone(), method.clone(), images.to_string()];
        for m in &metric_order {
            row.push(cell_text(cells.get(&(model.clone(), method.clone(), m.clone()))));
        }
        table.push(row);
    }
    render(&table, markdown)
}

/// How `b` compares with `a` on the images both were scored on, per model × metric: the
/// mean of b − a and on how many images b is better (deletion, ROAD MoRF: lower is better). Paired
/// differences say more than two means whose spread is as large as their gap.
pub fn paired_table(rows: &[Row], a: &str, b: &str, markdown: bool) -> String {
    let value = |method: &str| -> BTreeMap<(String, String, String), f64> {
        rows.iter()
            .filter(|r| r.method == method)
            .filter_map(|r| Some(((r.model.clone(), r.metric.clone(), r.image.clone()), r.value?)))
            .collect()
    };
    let (va, vb) = (value(a), value(b));
    let mut cells: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.model.clone(), r.metric.clone());
        if !cells.contains(&k) {
            cells.push(k);
        }
    }
    let mut table = vec![vec![
        "model".to_string(),
        "metric".into(),
        "images".into(),
        format!("mean {b} − {a}"),
        format!("{b} better"),
    ]];
    for (model, metric) in cells {
        let diffs: Vec<f64> = va
            .iter()
            .filter(|((m, x, _), _)| *m == model && *x == metric)
            .filter_map(|((m, x, image), &av)| Some(vb.get(&(m.clone(), x.clone(), image.clone()))? - av))
            .collect();
        if diffs.is_empty() {
            continue;
        }
        let lower_is_better =
            <super::EvalMetric as clap::ValueEnum>::from_str(&metric, false).is_ok_and(|m| m.lower_is_better());
        let better = diffs
            .iter()
            .filter(|&&d| if lower_is_better { d < 0.0 } else { d > 0.0 })
            .count();
        table.push(vec![
            model,
            metric,
            diffs.len().to_string(),
            format!("{:+.3}", diffs.iter().sum::<f64>() / diffs.len() as f64),
            format!("{better}/{}", diffs.len()),
        ]);
    }
    render(&table, markdown)
}

/// Merges shard files: rows are deduplicated by image × model × method × metric (the first
/// file wins; a different value for the same key is reported, not silently overwritten).
pub fn merge(inputs: &[PathBuf]) -> Result<(Vec<Row>, usize)> {
    // First-seen order, so a merged file lists methods and metrics as the runs did.
    let mut order: Vec<RowKey> = Vec::new();
    let mut seen: std::collections::HashMap<RowKey, Row> = std::collections::HashMap::new();
    let mut conflicts = 0;
    for path in inputs {
        for row in read_rows(path, false)? {
            match seen.get(&row.key()) {
                Some(existing) if existing.value != row.value => {
                    conflicts += 1;
                    let shown = |v: Option<f64>| v.map_or_else(|| "no value".to_string(), |v| v.to_string());
                    eprintln!(
                        "warning: {} / {} / {} / {}: {} in an earlier file, {} in {}; keeping the first",
                        row.image,
                        row.model,
                        row.method,
                        row.metric,
                        shown(existing.value),
                        shown(row.value),
                        path.display()
                    );
                }
                Some(_) => {}
                None => {
                    order.push(row.key());
                    seen.insert(row.key(), row);
                }
            }
        }
    }
    let rows = order.iter().filter_map(|k| seen.remove(k)).collect();
    Ok((rows, conflicts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(image: &str, metric: &str, value: Option<f64>) -> Row {
        Row {
            image: image.into(),
            model: "m".into(),
            method: "ig:straight".into(),
            metric: metric.into(),
            value,
            note: "a, \"quoted\" note".into(),
            seconds: 1.5,
        }
    }

    #[test]
    fn rows_round_trip_and_a_half_written_line_is_dropped() {
        let dir = std::env::temp_dir().join(format!("pathscope-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["r.csv", "r.jsonl"] {
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            let rows = vec![row("a.png", "insertion", Some(0.25)), row("b.png", "insertion", None)];
            RowWriter::append_to(&path).unwrap().append(&rows).unwrap();
            assert_eq!(read_rows(&path, false).unwrap(), rows);
            // A killed writer leaves a partial line; it is cut off and appending resumes.
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(b"c.png,m,ig,inser").unwrap();
            drop(f);
            assert_eq!(read_rows(&path, true).unwrap(), rows);
            RowWriter::append_to(&path)
                .unwrap()
                .append(&[row("c.png", "insertion", Some(1.0))])
                .unwrap();
            assert_eq!(read_rows(&path, false).unwrap().len(), 3);
        }
    }

    #[test]
    fn paired_comparison_counts_wins_in_the_right_direction() {
        let mk = |image: &str, method: &str, metric: &str, v: f64| Row {
            method: method.into(),
            ..row(image, metric, Some(v))
        };
        let rows = vec![
            mk("a", "ig", "insertion", 0.2),
            mk("a", "idgi", "insertion", 0.5),
            mk("b", "ig", "insertion", 0.4),
            mk("b", "idgi", "insertion", 0.3),
            mk("a", "ig", "deletion", 0.2),
            mk("a", "idgi", "deletion", 0.1),
        ];
        let t = paired_table(&rows, "ig", "idgi", false);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[1].contains("insertion") && lines[1].contains("+0.100") && lines[1].contains("1/2"),
            "{t}"
        );
        assert!(
            lines[2].contains("deletion") && lines[2].contains("-0.100") && lines[2].contains("1/1"),
            "{t}"
        );
    }

    #[test]
    fn summary_is_mean_and_sample_std() {
        let rows = vec![
            row("a", "insertion", Some(1.0)),
            row("b", "insertion", Some(3.0)),
            row("c", "insertion", None),
        ];
        let s = summarize(&rows);
        let c = &s[&("m".to_string(), "ig:straight".to_string(), "insertion".to_string())];
        assert_eq!((c.n, c.missing), (2, 1));
        assert!((c.mean - 2.0).abs() < 1e-12 && (c.std - 2f64.sqrt()).abs() < 1e-12);
        assert!(summary_table(&rows, false).contains("2.000 ± 1.414 (1 skipped)"));
        assert!(summary_table(&rows, true).contains("| 2.000 ± 1.414 |"));
    }
}
