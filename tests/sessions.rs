//! Sessions in the studio (issue 8): a saved session reopens with its model, image,
//! settings, maps and pinned rows; the autosave left by a studio that died is offered
//! back and restores the finished maps; a clean exit leaves no crash offer; a damaged
//! session file is an error in the window, which keeps working.
#![cfg(feature = "studio")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use pathscope::attribution::catalog::{Family, Variant};
use pathscope::session::Session;
use pathscope::ui::state::Tab;
use pathscope::ui::{PathscopeApp, StudioOptions};

use common::studio::{harness, wait_for};

/// Every wait here (model load, an 8-step run) takes seconds; the bound only stops a hang.
const TIMEOUT: Duration = Duration::from_secs(180);

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sessions-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The maps on screen, by variant (channel-summed, as drawn).
fn maps(app: &PathscopeApp) -> Vec<(Variant, Vec<f32>)> {
    Variant::ALL
        .into_iter()
        .filter_map(|v| app.map_of(v).map(|m| (v, m)))
        .collect()
}

/// Runs a small IG job (8 steps, 2 references) for class 281 (tabby) and waits for it.
fn run_small_job(h: &mut Harness<'static, PathscopeApp>) {
    wait_for(h, "the model", TIMEOUT, |a| a.model_ready() && a.state.target.is_some());
    {
        let app = h.state_mut();
        app.state.settings.steps = 8;
        app.state.settings.references = 2;
        app.state.target = Some(281);
    }
    h.run_steps(2);
    h.get_by_label("Run").click();
    h.step();
    wait_for(h, "the maps", TIMEOUT, |a| {
        !a.running() && !a.runtime.run.jobs.is_empty()
    });
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
}

#[test]
fn a_saved_session_reopens_with_its_maps_and_settings() {
    let dir = scratch("save");
    let mut h = harness(StudioOptions::default());
    run_small_job(&mut h);
    h.state_mut().pin_current();
    {
        let app = h.state_mut();
        app.state.view.overlay = 0.4;
        app.state.tab = Tab::Scrubber;
        app.state.hidden.insert(Variant::Absolute);
        app.state.settings.method = Family::VarGrad;
    }
    let file = dir.join("cat.pathscope");
    h.state_mut().save_session(&file);
    assert!(h.state().runtime.errors.is_empty(), "{:?}", h.state().runtime.errors);
    let saved_maps = maps(h.state());
    let saved_pinned = h.state().state.pinned[0].maps.clone();
    let saved_settings = h.state().state.settings.clone();
    assert_eq!(saved_maps.len(), 4, "vanilla, absolute, re-calibrated, IDGI");

    let mut r = harness(StudioOptions {
        session: Some(file.clone()),
        ..Default::default()
    });
    wait_for(&mut r, "the restored model", TIMEOUT, |a| {
        a.model_ready() && a.state.target.is_some()
    });
    let app = r.state();
    assert!(app.runtime.errors.is_empty(), "{:?}", app.runtime.errors);
    assert_eq!(app.state.target, Some(281), "the saved target, not the top prediction");
    assert_eq!(app.state.settings, saved_settings);
    assert_eq!((app.state.view.overlay, app.state.tab), (0.4, Tab::Scrubber));
    assert!(app.state.hidden.contains(&Variant::Absolute));
    // Restoring computes nothing but the vanilla path again, for the scrubber's trace
    // (session files keep maps, not traces).
    assert!(
        app.runtime.run.jobs.iter().all(|(_, v)| *v == Variant::Vanilla),
        "{:?}",
        app.runtime.run.jobs
    );
    // The other maps are the saved floats, bit for bit; the vanilla map (and its
    // magnitude) is the saved one or its recomputation, equal to 1e-5 relative L2.
    let restored = maps(app);
    assert_eq!(restored.len(), saved_maps.len());
    for ((v, a), (w, b)) in restored.iter().zip(&saved_maps) {
        assert_eq!(v, w);
        if matches!(v, Variant::Vanilla | Variant::Absolute) {
            let diff: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| ((x - y) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
            assert!(diff <= 1e-5 * norm, "{v:?}: {diff} vs {norm}");
        } else {
            assert_eq!(a, b, "{v:?}");
        }
    }
    assert_eq!(app.state.pinned.len(), 1);
    assert_eq!(app.state.pinned[0].maps, saved_pinned);
    assert_eq!(app.runtime.session_file.as_deref(), Some(file.as_path()));
    assert!(app.state.results[&Variant::Vanilla].convergence_delta.is_some());
    wait_for(&mut r, "the retraced path", TIMEOUT, |a| {
        !a.running() && a.state.results[&Variant::Vanilla].trace.is_some()
    });
}

#[test]
fn a_crashed_studio_offers_its_autosave_back() {
    let dir = scratch("crash");
    let autosave = dir.join("autosave.pathscope");
    let with_autosave = || StudioOptions {
        autosave: Some(autosave.clone()),
        ..Default::default()
    };
    let before_crash = {
        let mut h = harness(with_autosave());
        assert!(h.state().runtime.recovery.is_none());
        run_small_job(&mut h);
        // Written after every finished job: the three maps are on disk now.
        let on_disk = Session::open(&autosave).unwrap();
        assert_eq!(
            on_disk.maps.len(),
            3,
            "{:?}",
            on_disk.maps.iter().map(|m| &m.name).collect::<Vec<_>>()
        );
        maps(h.state())
        // Dropped without `on_exit`: what a crash leaves.
    };

    let mut h = harness(with_autosave());
    let offered = h
        .state()
        .runtime
        .recovery
        .clone()
        .expect("the crashed session is offered");
    assert_eq!(offered, dir.join("crashed-session.pathscope"));
    assert!(
        !autosave.exists(),
        "set aside, so this studio's autosaves cannot overwrite it"
    );
    h.run_steps(2);
    h.get_by_label("Pathscope did not close properly last time. Restore its autosaved session?");
    h.get_by_label("Restore").click();
    wait_for(&mut h, "the restored session", TIMEOUT, |a| {
        a.model_ready() && a.state.target.is_some()
    });
    assert!(h.state().runtime.recovery.is_none());
    assert_eq!(h.state().state.target, Some(281));
    assert_eq!(maps(h.state()), before_crash);

    // A clean exit moves the autosave aside as the last session: no crash offer next time.
    eframe::App::on_exit(h.state_mut());
    assert!(!autosave.exists());
    assert!(dir.join("last-session.pathscope").exists());
    let h = harness(with_autosave());
    assert!(h.state().runtime.recovery.is_none());
    assert_eq!(h.state().last_session(), Some(dir.join("last-session.pathscope")));
}

#[test]
fn a_damaged_session_is_an_error_in_the_window_not_a_crash() {
    let dir = scratch("damaged");
    let file = dir.join("half.pathscope");
    let mut h = harness(StudioOptions::default());
    run_small_job(&mut h);
    h.state_mut().save_session(&file);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let before = maps(h.state());
    h.state_mut().open_session(&file);
    h.run_steps(2);
    let message = h.state().runtime.errors.last().cloned().expect("an error");
    assert!(message.contains("half.pathscope: damaged session file"), "{message}");
    h.get_by_label(message.as_str());
    // Nothing was replaced.
    assert_eq!(maps(h.state()), before);
    assert!(Path::new(&file).exists());
}

/// A session saved by the previous release (session format 1, Rust identifiers in its
/// names: `result/Vanilla`, `"ValidRef"`), written by the studio before the method catalog
/// (`tests/data/session_format1_gradient.pathscope`): it opens in the studio with its maps,
/// target and settings.
#[test]
fn a_session_of_the_previous_release_opens_with_its_maps() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/session_format1_gradient.pathscope");
    let stored = Session::open(&file).unwrap();
    let mut h = harness(StudioOptions {
        session: Some(file.clone()),
        ..Default::default()
    });
    wait_for(&mut h, "the restored session", TIMEOUT, |a| {
        a.model_ready() && a.state.target.is_some()
    });
    let app = h.state();
    assert!(app.runtime.errors.is_empty(), "{:?}", app.runtime.errors);
    assert_eq!(app.state.target, Some(281));
    assert_eq!(app.state.settings.method, Family::IgSg);
    assert_eq!(app.state.tab, Tab::Metrics);
    let vanilla = app.state.results[&Variant::Vanilla]
        .attribution
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(
        vanilla,
        stored.map("result/Vanilla").unwrap().data,
        "the map, bit for bit"
    );
    assert_eq!(app.state.pinned.len(), 1);
    assert_eq!(
        app.state.pinned[0].maps[0].1,
        stored.map("pinned/0/Vanilla").unwrap().data
    );
    assert!(!app.running(), "restoring computes nothing");
}
