//! `pathscope bench` writes a complete JSON report (timings themselves are not asserted:
//! speed belongs to benchmarks, not tests).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn bench_writes_a_complete_report() {
    let json = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args([
            "bench",
            "--batch-sizes",
            "1,2",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--json",
            json.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(report["matmul_gflops"].as_f64().unwrap() > 0.0);
    let model = &report["models"][0];
    assert_eq!(model["architecture"], "SqueezeNet-1.1");
    let oracle = model["oracle"].as_array().unwrap();
    assert_eq!(oracle.len(), 2);
    assert!(oracle
        .iter()
        .all(|r| r["forward_gradient_ms_per_point"].as_f64().unwrap() > 0.0));
    assert!([1, 2].contains(&model["best_batch_size"].as_u64().unwrap()));
    assert_eq!(model["ig"][0]["steps"], 2);
}
