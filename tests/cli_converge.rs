//! `pathscope converge` end to end on the embedded SqueezeNet and a bundled photo: the CSV
//! agrees with what the study must show (errors fall with points, IDGI is complete), the
//! figure is drawn in every format with its curves, and bad flags are one-line errors.

use std::path::PathBuf;
use std::process::Command;

use pathscope::export::metadata::FigureMetadata;

fn out_dir(name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_converge")
        .join(name);
    let _ = std::fs::remove_dir_all(&out);
    out
}

fn cat() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/images/chelsea_cat.png")
        .display()
        .to_string()
}

fn converge(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(["converge", "--image", &cat(), "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

struct Row {
    scheme: String,
    parameter: usize,
    gradients: usize,
    completeness: f64,
    map: f64,
}

fn rows(csv: &str) -> Vec<Row> {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "direction,scheme,parameter,gradient_points,forward_points,completeness_error,map_error,map_error_estimate,seconds"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 9, "{l}");
            assert_eq!(f[0], "to-input");
            Row {
                scheme: f[1].to_string(),
                parameter: f[2].parse().unwrap(),
                gradients: f[3].parse().unwrap(),
                completeness: f[5].parse().unwrap(),
                map: f[6].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn the_study_falls_with_points_and_is_drawn_in_every_format() {
    let out = out_dir("study");
    let o = converge(
        &out,
        &[
            "--schemes",
            "left,gauss-legendre,adaptive,idgi",
            "--steps",
            "4,16,64",
            "--directions",
            "to-input",
            "--reference-steps",
            "256",
            "--tolerance",
            "0.02",
            "--max-points",
            "64",
            "--format",
            "png,svg,pdf",
            "--dpi",
            "100",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("Gauss–Legendre") && stdout.contains("wrote"),
        "{stdout}"
    );

    let rows = rows(&std::fs::read_to_string(out.join("convergence.csv")).unwrap());
    let find = |scheme: &str, n: usize| rows.iter().find(|r| r.scheme == scheme && r.parameter == n).unwrap();
    // Gauss–Legendre's map error falls with n (≈ 1/n on a ReLU network), and at 64 points
    // is within 5 % of the 256-point reference.
    let gl: Vec<f64> = [4, 16, 64].iter().map(|&n| find("gauss-legendre", n).map).collect();
    assert!(gl[0] > gl[1] && gl[1] > gl[2], "{gl:?}");
    assert!(gl[2] < 0.05, "{gl:?}");
    // IDGI is complete by construction at every n.
    for n in [4, 16, 64] {
        assert!(find("idgi", n).completeness < 1e-4);
    }
    // The adaptive rule's rounds add points and end within its budget; its last round is
    // at least as good as its first.
    let adaptive: Vec<&Row> = rows.iter().filter(|r| r.scheme == "adaptive").collect();
    assert!(adaptive.len() >= 2);
    assert!(adaptive.windows(2).all(|w| w[1].gradients > w[0].gradients));
    assert!(adaptive.last().unwrap().gradients <= 64);
    assert!(adaptive.last().unwrap().map < adaptive[0].map);
    assert_eq!(rows.len(), 9 + adaptive.len());

    // The figure: one chart pair; the PNG has Gauss–Legendre's colour (the second curve,
    // matplotlib's orange) in quantity, the SVG a polyline per curve, and every format says
    // which command made it.
    let png = image::open(out.join("convergence.png")).unwrap().to_rgb8();
    let orange = png.pixels().filter(|p| p.0 == [255, 127, 14]).count();
    assert!(orange > 200, "{orange} orange pixels");
    let svg = std::fs::read_to_string(out.join("convergence.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 8);
    for f in ["png", "svg", "pdf"] {
        let bytes = std::fs::read(out.join(format!("convergence.{f}"))).unwrap();
        let meta = FigureMetadata::read(&bytes).unwrap();
        assert!(meta.command.contains("converge"), "{f}: {}", meta.command);
        assert_eq!(meta.settings["reference_steps"], 256);
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["target"], 285);
    assert_eq!(summary["reached"].as_array().unwrap().len(), 4);
    assert!(summary["reference_completeness_error"].as_f64().unwrap() < 0.01);
}

#[test]
fn bad_flags_are_one_line_errors() {
    for (name, extra, words) in [
        ("tolerance", vec!["--tolerance", "2"], "--tolerance"),
        ("steps", vec!["--steps", "0,4"], "steps"),
        ("scheme", vec!["--schemes", "simpson"], "simpson"),
        ("reference", vec!["--reference-steps", "1"], "reference"),
    ] {
        let out = out_dir(name);
        let o = converge(&out, &extra);
        assert!(!o.status.success(), "{name} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(words), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}
