//! `pathscope eval` end to end on the embedded model: shards merge into the same table as
//! one run, a rerun resumes without duplicating rows, a killed run resumes without losing
//! or duplicating rows, a bad image becomes a row with the reason, and ROAD rows are the
//! mean of the curve they carry.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pathscope"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_eval").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A folder with the bundled photos.
fn photos(dir: &Path) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/images");
    for name in ["chelsea_cat.png", "coffee.png", "grace_hopper.jpg", "rocket.jpg"] {
        std::fs::copy(assets.join(name), images.join(name)).unwrap();
    }
    images
}

/// Data rows (image, method, metric, value bits) of a CSV results file, header checked.
/// Values compare as f64 bits: CSV and JSON may print the same double differently.
fn rows(path: &Path) -> Vec<(String, String, String, u64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("image,model,method,metric,value,note,seconds"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let value: f64 = f[4].parse().unwrap_or(f64::NAN);
            (f[0].to_string(), f[2].to_string(), f[3].to_string(), value.to_bits())
        })
        .collect()
}

fn eval(images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    eval_with(images, out, "gradient,random", "insertion,deletion", extra)
}

fn eval_with(images: &Path, out: &Path, methods: &str, metrics: &str, extra: &[&str]) -> std::process::Output {
    let o = bin()
        .args([
            "eval",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--methods", methods, "--metrics", metrics])
        .args(["--pixels-per-step", "12544"])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

#[test]
fn shards_merge_into_the_single_run_table_and_reruns_resume() {
    let dir = scratch("shards");
    let images = photos(&dir);
    let whole = dir.join("whole.csv");
    let o = eval(&images, &whole, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("insertion") && stdout.contains("±"), "{stdout}");
    let mut all = rows(&whole);
    assert_eq!(all.len(), 4 * 2 * 2);
    for (_, _, _, v) in &all {
        let v = f64::from_bits(*v);
        assert!((0.0..=1.0).contains(&v), "AUC {v}");
    }

    let parts: Vec<PathBuf> = (1..=3).map(|k| dir.join(format!("part{k}.jsonl"))).collect();
    for (k, part) in parts.iter().enumerate() {
        eval(&images, part, &["--shard", &format!("{}/3", k + 1)]);
    }
    let merged = dir.join("merged.csv");
    let mut args = vec![
        "eval".to_string(),
        "merge".into(),
        "--out".into(),
        merged.display().to_string(),
    ];
    args.extend(parts.iter().map(|p| p.display().to_string()));
    let o = bin().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut merged_rows = rows(&merged);
    all.sort();
    merged_rows.sort();
    assert_eq!(merged_rows, all, "three shards merged give the table of one run");

    // Rerunning with the same output computes nothing and adds no rows.
    let before = std::fs::read(&whole).unwrap();
    let o = eval(&images, &whole, &[]);
    assert_eq!(std::fs::read(&whole).unwrap(), before);
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 image × method units left"));

    // A run on the first two images, then on all: the first rows stay, the rest are added.
    let partial = dir.join("partial.csv");
    eval(&images, &partial, &["--limit", "2"]);
    let first = rows(&partial);
    assert_eq!(first.len(), 2 * 2 * 2);
    eval(&images, &partial, &[]);
    let resumed = rows(&partial);
    assert_eq!(&resumed[..first.len()], &first[..]);
    let mut resumed_sorted = resumed.clone();
    resumed_sorted.sort();
    assert_eq!(resumed_sorted, all);
}

#[test]
fn a_bad_image_becomes_a_row_with_the_reason() {
    let dir = scratch("bad_image");
    let images = photos(&dir);
    std::fs::write(images.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = dir.join("r.csv");
    // A method named twice is scored once.
    eval_with(&images, &out, "random,random", "insertion", &[]);
    let text = std::fs::read_to_string(&out).unwrap();
    let broken: Vec<&str> = text.lines().filter(|l| l.starts_with("broken.png")).collect();
    assert_eq!(broken.len(), 1, "{text}");
    assert!(broken[0].contains("image not usable"), "{}", broken[0]);
    assert_eq!(text.lines().count(), 1 + 5);
}

/// ROAD (both orders, both imputations) on the cat: each value is the mean probability of
/// its curve (recomputed here from the 9 points the note carries), in [0, 1]; the same seed
/// gives the same values; the gradient map's most relevant pixels destroy the class faster
/// than a random map's (lower MoRF), and its least relevant ones matter less (higher LeRF).
#[test]
fn road_rows_are_their_curves_mean_and_gradient_beats_random() {
    let dir = scratch("road");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/images");
    std::fs::copy(assets.join("chelsea_cat.png"), images.join("chelsea_cat.png")).unwrap();
    let metrics = "road-morf,road-lerf,road-morf-mean,road-lerf-mean";
    let out = dir.join("r.csv");
    eval_with(&images, &out, "gradient,random", metrics, &["--no-map-cache"]);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut value = std::collections::HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let v: f64 = f[4].parse().unwrap();
        assert!((0.0..=1.0).contains(&v), "{line}");
        let points: Vec<(f64, f64)> = f[5]
            .split(' ')
            .map(|p| {
                let (x, y) = p.strip_prefix("p@").unwrap().split_once("%=").unwrap();
                (x.parse::<f64>().unwrap() / 100.0, y.parse::<f64>().unwrap())
            })
            .collect();
        let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
        assert_eq!(xs, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], "{line}");
        let area: f64 = points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum();
        assert!((area / 0.8 - v).abs() < 1e-4, "{line}: trapezoid mean {}", area / 0.8);
        value.insert((f[2].to_string(), f[3].to_string()), v);
    }
    assert_eq!(value.len(), 2 * 4, "{text}");
    let v = |method: &str, metric: &str| value[&(method.to_string(), metric.to_string())];
    assert!(v("gradient", "road-morf") < v("random", "road-morf"), "{text}");
    assert!(v("gradient", "road-lerf") > v("random", "road-lerf"), "{text}");
    // The imputations differ: the mean fill is a different curve.
    assert_ne!(v("gradient", "road-morf"), v("gradient", "road-morf-mean"));
    // Same seed, same noise, same numbers.
    let again = dir.join("again.csv");
    eval_with(&images, &again, "gradient,random", metrics, &["--no-map-cache"]);
    assert_eq!(rows(&out), rows(&again));
}

/// Issue 8's long-run check: a 500-image eval killed midway (SIGKILL, no chance to clean
/// up) and started again ends with every row exactly once.
#[test]
fn a_killed_500_image_run_resumes_without_losing_or_duplicating_rows() {
    let dir = scratch("killed");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..500u32 {
        let img = image::RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([(x * 16 + i % 7) as u8, (y * 16) as u8, (i % 251) as u8])
        });
        img.save(images.join(format!("img{i:03}.png"))).unwrap();
    }
    let out = dir.join("r.csv");
    let args = |cmd: &mut Command| {
        cmd.args([
            "eval",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--methods", "random", "--metrics", "insertion", "--no-map-cache"])
        .args(["--pixels-per-step", "50176"]);
    };
    let mut cmd = bin();
    args(&mut cmd);
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    loop {
        let lines = std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
        if lines > 100 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(600), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = std::fs::read_to_string(&out).unwrap().lines().count() - 1;
    assert!(at_kill < 500, "killed midway, {at_kill} rows");

    let mut cmd = bin();
    args(&mut cmd);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all = rows(&out);
    assert_eq!(all.len(), 500, "every image once");
    let unique: HashSet<&String> = all.iter().map(|r| &r.0).collect();
    assert_eq!(unique.len(), 500, "no image twice");
    assert!(
        all.iter().all(|r| f64::from_bits(r.3).is_finite()),
        "every row has a value"
    );
}
