//! `pathscope sanity` end to end on the embedded SqueezeNet-1.1 and the bundled cat: the
//! gradient and the edge control at 3 depths (0, 5 and all 10 blocks randomised).

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pathscope"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_sanity").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cat() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png")
}

/// One CSV row: method, depth, block and the four similarities.
struct Row {
    method: String,
    depth: usize,
    block: String,
    values: [f64; 4],
}

#[test]
fn gradient_loses_similarity_and_the_edge_control_does_not() {
    let dir = scratch("gradient");
    let out = dir.join("sanity.csv");
    let o = bin()
        .args(["sanity", "--image", cat().to_str().unwrap()])
        .args(["--methods", "gradient,edge", "--depths", "3", "--seed", "0"])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The table: one block per method, with the column names.
    assert!(stdout.contains("spearman_abs") && stdout.contains("hog"), "{stdout}");
    assert!(stdout.contains("features.0") && stdout.contains("\nedge\n"), "{stdout}");

    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("method,depth,block,spearman_abs,spearman_signed,ssim,hog")
    );
    let rows: Vec<Row> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "{l}");
            let v = |i: usize| f[i].parse::<f64>().unwrap();
            Row {
                method: f[0].to_string(),
                depth: f[1].parse().unwrap(),
                block: f[2].to_string(),
                values: [v(3), v(4), v(5), v(6)],
            }
        })
        .collect();
    let keys: Vec<(&str, usize, &str)> = rows
        .iter()
        .map(|r| (r.method.as_str(), r.depth, r.block.as_str()))
        .collect();
    // SqueezeNet-1.1 has 10 blocks; 3 depths are 0, 5 and 10, named by the block randomised last.
    assert_eq!(
        keys,
        [
            ("gradient", 0, "original"),
            ("gradient", 5, "features.9"),
            ("gradient", 10, "features.0"),
            ("edge", 0, "original"),
            ("edge", 5, "features.9"),
            ("edge", 10, "features.0"),
        ]
    );
    for r in &rows {
        if r.depth == 0 || r.method == "edge" {
            for v in r.values {
                assert!(
                    (v - 1.0).abs() < 1e-9,
                    "{} at depth {}: {:?}",
                    r.method,
                    r.depth,
                    r.values
                );
            }
        }
    }
    // Measured: 0.458 at depth 5, 0.290 with every block randomised.
    let deepest = &rows[2];
    assert!(
        deepest.values[0] < 0.5,
        "the gradient of a randomised model should not look like the trained one's: {:?}",
        deepest.values
    );
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let dir = scratch("errors");
    let out = dir.join("x.csv");
    for (flag, value, expect) in [
        ("--depths", "1", "depth count"),
        ("--methods", "random", "edge"),
        ("--methods", "sobel", "unknown method"),
    ] {
        let o = bin()
            .args([
                "sanity",
                "--image",
                cat().to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args([flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(expect) && !stderr.contains("panicked"), "{stderr}");
    }
    assert!(!out.exists());
}
