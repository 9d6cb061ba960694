//! The studio's Export dialog driven through egui_kittest: it opens after a run, previews
//! the figure, saves it with the settings and the `pathscope figure` command embedded, and
//! that command, run as written, makes the same figure; raw maps and the trace export too.
#![cfg(feature = "studio")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use pathscope::attribution::catalog::Variant;
use pathscope::export::metadata::FigureMetadata;
use pathscope::export::FigureFormat;
use pathscope::ui::{PathscopeApp, StudioOptions};

use common::studio::wait_for;

/// Splits a command written by `shell_command` (words, single-quoted words).
fn shell_split(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn export_dialog_saves_a_figure_its_command_remakes() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("export_dialog");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut h = Harness::builder()
        .with_size([1400.0, 900.0])
        .wgpu()
        .build_eframe(|cc| PathscopeApp::new(cc, StudioOptions::default()));
    wait_for(&mut h, "the model", Duration::from_secs(180), |a| {
        a.model_ready() && a.state.target.is_some()
    });
    h.state_mut().state.settings.steps = 4;
    h.state_mut().state.settings.references = 2;
    h.run_steps(2);
    h.get_by_label("Run").click();
    wait_for(&mut h, "the maps", Duration::from_secs(180), |a| {
        !a.running() && !a.runtime.run.jobs.is_empty()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);

    h.get_by_label("Export figure…").click();
    h.run_steps(3);
    assert!(h.state().export.open);
    h.get_by_label_contains("preview: 180 × ");
    h.get_by_label("positive").click();
    h.run_steps(2);
    assert_eq!(h.state().export.settings.chosen_columns().len(), 4);
    h.get_by_label("png").click();
    h.run_steps(2);
    assert_eq!(h.state().export.settings.format, FigureFormat::Png);
    h.state_mut().export.settings.dpi = 100.0;
    h.run_steps(3);
    h.snapshot("export_dialog");

    let out = dir.join("studio.png");
    h.state().export_to(&out).unwrap();
    let meta = FigureMetadata::read(&std::fs::read(&out).unwrap()).unwrap();
    assert!(
        meta.command.starts_with("pathscope figure --images /",),
        "the photo by its absolute path: {}",
        meta.command
    );
    assert!(
        meta.command.contains(
            "assets/images/chelsea_cat.png --methods ig:straight,ig-uniform:valid-ip,ig:straight:idgi --modes photo,signed,absolute,positive"
        ),
        "{}",
        meta.command
    );
    assert_eq!(meta.settings["images"][0]["target"], 285);
    assert_eq!(meta.settings["style"]["dpi"], 100.0);

    // The embedded command, run as written (with another --out) from another folder,
    // makes the same picture.
    let mut args = shell_split(&meta.command);
    assert_eq!(args.remove(0), "pathscope");
    let again = dir.join("again.png");
    let i = args.iter().position(|a| a == "--out").unwrap();
    args[i + 1] = again.display().to_string();
    let r = Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(&args)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let a = image::open(&out).unwrap().to_rgb8();
    let b = image::open(&again).unwrap().to_rgb8();
    assert_eq!(a.dimensions(), b.dimensions());
    let differing = a.pixels().zip(b.pixels()).filter(|(p, q)| p != q).count();
    // The maps differ only by floating-point summation order, if at all.
    assert!(
        differing * 1000 < (a.width() * a.height()) as usize,
        "{differing} of {} pixels differ",
        a.width() * a.height()
    );

    // Raw data: the three maps and the vanilla path's trace.
    let st = dir.join("maps.safetensors");
    assert_eq!(h.state().export_maps(&st, false).unwrap(), 3);
    let bytes = std::fs::read(&st).unwrap();
    let maps = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(maps.tensor("ig:straight").unwrap().shape(), [3, 224, 224]);
    assert_eq!(h.state().export_maps(&dir.join("npy"), true).unwrap(), 3);
    assert!(dir.join("npy/ig-straight-idgi.npy").exists());
    let trace = dir.join("trace.safetensors");
    h.state().export_trace(&trace).unwrap();
    let bytes = std::fs::read(&trace).unwrap();
    let t = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(t.tensor("score").unwrap().shape()[0] >= 4);
    assert!(h.state().state.results.contains_key(&Variant::Idgi));
    assert!(!Path::new(&out).with_extension("png.tmp").exists());
}
