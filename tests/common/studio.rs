//! Driving the real studio through egui_kittest (wgpu on Mesa's lavapipe in CI).

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use pathscope::ui::{PathscopeApp, StudioOptions};

/// The studio at the size the snapshots are taken at.
pub fn harness(options: StudioOptions) -> Harness<'static, PathscopeApp> {
    harness_with_size([1400.0, 860.0], options)
}

/// The studio with default options in a window of `width` × `height` points.
pub fn sized(width: f32, height: f32) -> Harness<'static, PathscopeApp> {
    harness_with_size([width, height], StudioOptions::default())
}

fn harness_with_size(size: [f32; 2], options: StudioOptions) -> Harness<'static, PathscopeApp> {
    Harness::builder()
        .with_size(size)
        .wgpu()
        .build_eframe(move |cc| PathscopeApp::new(cc, options.clone()))
}

/// Steps frames until `done` holds (the engine works on its own thread meanwhile).
pub fn wait_for(
    h: &mut Harness<'static, PathscopeApp>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&PathscopeApp) -> bool,
) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; errors: {:?}",
            h.state().runtime.errors
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}
