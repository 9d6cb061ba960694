//! End to end: the real `pathscope` binary in a real X window (Xvfb), rendered by wgpu
//! on Mesa's software Vulkan (lavapipe). It must open, compute the default maps by
//! itself (`gui --run`) and draw them; the screenshot must not be blank and must show
//! the heatmaps' colours. Needs `Xvfb` and ImageMagick's `import` (installed by
//! .ci/run); without them the test says SKIPPED and why.
#![cfg(feature = "studio")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Counts strongly blue and strongly red pixels (the diverging map's two ends) inside
/// the panel area (right of the 300-point control column, below the tab bar, where
/// neither the selection highlights nor the photo thumbnail are) and the number of
/// distinct colours on the whole screen.
fn analyse(png: &std::path::Path) -> Option<(usize, usize, usize)> {
    let img = image::open(png).ok()?.to_rgb8();
    let mut blue = 0;
    let mut red = 0;
    let mut levels = std::collections::HashSet::new();
    for (x, y, p) in img.enumerate_pixels() {
        let [r, g, b] = p.0;
        levels.insert(r as u32 * 65536 + g as u32 * 256 + b as u32);
        if x < 320 || !(95..=700).contains(&y) {
            continue;
        }
        if b as i32 - r as i32 > 60 && b as i32 - g as i32 > 20 {
            blue += 1;
        }
        if r as i32 - b as i32 > 60 && r as i32 - g as i32 > 40 {
            red += 1;
        }
    }
    Some((blue, red, levels.len()))
}

#[test]
fn the_window_opens_and_draws_maps() {
    if !have("Xvfb") || !have("import") {
        eprintln!("SKIPPED the_window_opens_and_draws_maps: needs Xvfb and ImageMagick's import (apt-get install xvfb imagemagick)");
        return;
    }
    let display = format!(":{}", 90 + std::process::id() % 9);
    let _xvfb = Kill(
        Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1400x900x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb"),
    );
    std::thread::sleep(Duration::from_millis(800));
    let runtime = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e_window.log");
    // The studio autosaves after every job; here, not into the user's home.
    let autosave = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{}.pathscope", std::process::id()));
    let _ = std::fs::remove_file(&autosave);
    let mut app = Kill(
        Command::new(env!("CARGO_BIN_EXE_pathscope"))
            .args(["gui", "--run"])
            .env("DISPLAY", &display)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("PATHSCOPE_AUTOSAVE", &autosave)
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting pathscope"),
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e_window.png");
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(240) {
        std::thread::sleep(Duration::from_secs(2));
        if let Ok(Some(status)) = app.0.try_wait() {
            panic!(
                "pathscope exited with {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let ok = Command::new("import")
            .args(["-display", &display, "-window", "root", shot.to_str().unwrap()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            continue;
        }
        last = analyse(&shot);
        if let Some((blue, red, levels)) = last {
            // Both ends of the diverging map on screen, over a real (many-coloured) UI.
            if blue > 500 && red > 500 && levels > 1000 {
                eprintln!(
                    "drawn after {:?}: {blue} blue, {red} red pixels, {levels} colours; screenshot {}",
                    start.elapsed(),
                    shot.display()
                );
                killed_after_its_jobs(app, &autosave);
                return;
            }
        }
    }
    panic!(
        "no map on screen after 240 s (last screenshot {}: {last:?}); app log:\n{}",
        shot.display(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Issue 8's crash check on the real process: once all three maps are autosaved, SIGKILL
/// (no chance to clean up) leaves a session file that opens with every map.
fn killed_after_its_jobs(app: Kill, autosave: &std::path::Path) {
    let start = Instant::now();
    let count = || {
        pathscope::session::Session::open(autosave)
            .map(|s| s.maps.len())
            .unwrap_or(0)
    };
    while count() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no autosave with 3 maps at {}",
            autosave.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(app); // SIGKILL
    let session = pathscope::session::Session::open(autosave).expect("the autosave survives the kill");
    let names: Vec<&str> = session.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["result/idgi", "result/recalibrated", "result/vanilla"]);
    assert!(session.image.is_some());
}
