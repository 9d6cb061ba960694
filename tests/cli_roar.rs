//! `pathscope roar` end to end on the shipped digits, kept small (two epochs, few cells):
//! the same seed gives the same rows, a killed run resumes without losing or repeating a
//! row, two shards merged equal one unsharded run, the figure is drawn, and bad flags are
//! one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn out_dir(name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_roar").join(name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    out
}

/// A small run: two controls, two fractions, two retrains, two epochs (10 networks).
const SMALL: [&str; 10] = [
    "roar",
    "--methods",
    "random,sobel",
    "--fractions",
    "30,70",
    "--retrains",
    "2",
    "--epochs",
    "2",
    "--seed=4",
];

fn roar(out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(SMALL)
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

/// The rows of a results file without the timing column, in file order.
fn rows(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("dataset,mode,removal,estimator,fraction,retrain,seed,test_accuracy"));
    lines.map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_same_seed_gives_the_same_rows_and_a_figure() {
    let dir = out_dir("seeded");
    let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
    let png = dir.join("roar.png");
    let first = roar(&a, &["--figure", png.to_str().unwrap()]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(roar(&b, &[]).status.success());
    let (ra, rb) = (rows(&a), rows(&b));
    assert_eq!(ra.len(), 10, "2 unmodified + 2 estimators × 2 fractions × 2 retrains");
    assert_eq!(ra, rb);
    // Every accuracy is a fraction of the 359 test digits.
    for row in &ra {
        let accuracy: f64 = row.split(',').nth(7).unwrap().parse().unwrap();
        let correct = accuracy * 359.0;
        assert!((correct - correct.round()).abs() < 1e-6 && accuracy > 0.1, "{row}");
    }
    let table = String::from_utf8_lossy(&first.stdout);
    assert!(
        table.contains("Random") && table.contains("Sobel edges") && table.contains("70 %"),
        "{table}"
    );
    let image = image::open(&png).unwrap().to_rgb8();
    // The random control's grey and Sobel's brown are drawn.
    let has = |c: [u8; 3]| image.pixels().any(|p| p.0 == c);
    assert!(has([127, 127, 127]) && has([140, 86, 75]));
}

#[test]
fn a_killed_run_resumes_without_losing_or_repeating_rows() {
    let dir = out_dir("resume");
    let (whole, killed) = (dir.join("whole.csv"), dir.join("killed.csv"));
    assert!(roar(&whole, &[]).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(SMALL)
        .args(["--out", killed.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Kill it once three networks are written (mid-run: ten in all).
    while std::fs::read_to_string(&killed).map_or(0, |t| t.lines().count()) < 4 {
        assert!(started.elapsed() < Duration::from_secs(120), "no rows appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = rows(&killed).len();
    assert!((3..10).contains(&partial), "{partial} rows before the kill");
    let resumed = roar(&killed, &[]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("resuming"));
    assert_eq!(sorted(rows(&killed)), sorted(rows(&whole)));
}

#[test]
fn two_shards_merged_equal_one_run() {
    let dir = out_dir("shards");
    let whole = dir.join("whole.csv");
    assert!(roar(&whole, &[]).status.success());
    let parts: Vec<PathBuf> = (1..=2).map(|k| dir.join(format!("part{k}.csv"))).collect();
    for (k, part) in parts.iter().enumerate() {
        let out = roar(part, &["--shard", &format!("{}/2", k + 1)]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(rows(&parts[0]).len() == 5 && rows(&parts[1]).len() == 5);
    let merged = dir.join("merged.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(["roar", "merge", "--out", merged.to_str().unwrap()])
        .args(&parts)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sorted(rows(&merged)), sorted(rows(&whole)));
}

#[test]
fn bad_flags_are_one_line_errors() {
    let dir = out_dir("errors");
    let out = dir.join("r.csv");
    let cases: [(&[&str], &str); 6] = [
        (&["--fractions", "0"], "between 0 and 100"),
        (&["--fractions", "100"], "between 0 and 100"),
        (&["--methods", "agi"], "ROAR ranks"),
        (&["--methods", "ig+ig"], "only an ensemble"),
        (&["--data", "/nonexistent/folder"], "not a folder"),
        (&["--figure", "x.gif"], ".png, .svg or .pdf"),
    ];
    for (flags, expected) in cases {
        let o = roar(&out, flags);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{flags:?}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
    }
    // Rows of another run in the same file.
    let tiny = |seed: &str| {
        Command::new(env!("CARGO_BIN_EXE_pathscope"))
            .args([
                "roar",
                "--methods",
                "random",
                "--fractions",
                "50",
                "--retrains",
                "1",
                "--epochs",
                "1",
            ])
            .args([seed, "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    assert!(tiny("--seed=4").status.success());
    let other = tiny("--seed=5");
    assert!(String::from_utf8_lossy(&other.stderr).contains("holds rows of another run"));
}
