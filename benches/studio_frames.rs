//! Frame times of the studio (a benchmark, not a test): the wall time of egui frames
//! rendered with wgpu (lavapipe here) while
//! 1. four 224² heatmap panels are on screen and only the view changes (zoom), and
//! 2. the scrubber moves through a 200-step trace, one step per frame,
//!
//! plus the time from pressing Run to the first partial map. Run:
//! `cargo bench --bench studio_frames`.

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use pathscope::attribution::catalog::Variant;
use pathscope::ui::state::Tab;
use pathscope::ui::{PathscopeApp, StudioOptions};

fn wait_for(h: &mut Harness<'static, PathscopeApp>, done: impl Fn(&PathscopeApp) -> bool) -> Duration {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "timed out; errors: {:?}",
            h.state().runtime.errors
        );
        h.step();
        std::thread::sleep(Duration::from_millis(2));
    }
    start.elapsed()
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<48} n={:<4} median {:6.2} ms   p90 {:6.2} ms   max {:6.2} ms",
        ms.len(),
        pct(0.5),
        pct(0.9),
        ms[ms.len() - 1]
    );
}

fn main() {
    let mut h = Harness::builder()
        .with_size([1400.0, 860.0])
        .wgpu()
        .build_eframe(|cc| PathscopeApp::new(cc, StudioOptions::default()));
    wait_for(&mut h, |a| a.model_ready() && a.state.target.is_some());
    println!(
        "renderer: {}",
        if h.state().gpu_rendering() {
            "WGSL shader (wgpu)"
        } else {
            "CPU textures"
        }
    );

    // Time to the first partial map: 200-step straight IG, batch 8.
    h.state_mut().state.settings.steps = 200;
    h.state_mut().state.settings.batch_size = 8;
    h.state_mut().state.settings.references = 10;
    h.get_by_label("Run").click();
    let first = wait_for(&mut h, |a| a.map_of(Variant::Vanilla).is_some());
    println!(
        "time from Run to the first partial map: {:.0} ms",
        first.as_secs_f64() * 1e3
    );
    let all = wait_for(&mut h, |a| !a.running());
    println!(
        "time from the first partial map to all maps: {:.1} s",
        all.as_secs_f64()
    );

    // 1. Four panels, view changes only.
    let mut frames = Vec::new();
    for i in 0..60 {
        h.state_mut().state.view.zoom = 1.0 + (i % 20) as f32 * 0.2;
        let t = Instant::now();
        h.step();
        frames.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summary("four 224² panels, zoom changing every frame", frames);

    // 2. Scrubbing a 200-step trace.
    h.state_mut().state.tab = Tab::Scrubber;
    h.step();
    let steps = h.state().state.results[&Variant::Vanilla]
        .trace
        .as_ref()
        .map(|t| t.steps.len())
        .unwrap_or(0);
    let mut frames = Vec::new();
    for s in 0..steps {
        h.state_mut().scrubber.step = s;
        let t = Instant::now();
        h.step();
        frames.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summary(&format!("scrubber, one new step per frame ({steps} steps)"), frames);
}
