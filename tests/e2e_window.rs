//! End to end: the real `pathscope` binary in a real X window (Xvfb), rendered by wgpu
//! on Mesa's software Vulkan (lavapipe). It must open, compute the default maps by
//! itself (`gui --run`) and draw them; the screenshot must not be blank and must show
//! the heatmaps' colours. Without an xdg desktop portal or zenity, "Open image…" must
//! still open a typed photo (the in-app chooser, driven by xdotool). Needs `Xvfb`,
//! ImageMagick's `import` and `xdotool` (installed by .ci/run); without them a test says
//! SKIPPED and why.
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

/// The top bar's enabled buttons in a screenshot, left to right, as (centre x, centre y):
/// runs of egui's button fill (#323232) at least 30 px long on the row, in the top bar,
/// that has the most of them.
fn top_bar_buttons(img: &image::RgbImage) -> Vec<(u32, u32)> {
    let mut best: Vec<(u32, u32)> = Vec::new();
    for y in 2..24.min(img.height()) {
        let mut buttons = Vec::new();
        let mut start = None;
        for x in 0..=img.width() {
            let fill = x < img.width() && img.get_pixel(x, y).0 == [50, 50, 50];
            match (fill, start) {
                (true, None) => start = Some(x),
                (false, Some(s)) => {
                    if x - s >= 30 {
                        buttons.push(((s + x) / 2, y));
                    }
                    start = None;
                }
                _ => {}
            }
        }
        if buttons.len() > best.len() {
            best = buttons;
        }
    }
    best
}

/// Pixels of the test photo's green in the control column (where the thumbnail is).
fn green_pixels(img: &image::RgbImage) -> usize {
    img.enumerate_pixels()
        .filter(|(x, y, p)| {
            let [r, g, b] = p.0;
            *x < 300 && (25..400).contains(y) && r.abs_diff(30) < 12 && g.abs_diff(200) < 12 && b.abs_diff(60) < 12
        })
        .count()
}

fn screenshot(display: &str, path: &std::path::Path) -> Option<image::RgbImage> {
    let ok = Command::new("import")
        .args(["-display", display, "-window", "root", path.to_str()?])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| image::open(path).ok().map(|i| i.to_rgb8())).flatten()
}

fn xdotool(display: &str, args: &[&str]) {
    let status = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .status()
        .expect("running xdotool");
    assert!(status.success(), "xdotool {args:?} failed");
}

/// Issue 21: with no xdg desktop portal (no session bus) and no zenity, "Open image…"
/// must still open a photo: the system dialog answers "no file" at once, the in-app
/// chooser opens, and a typed path with Enter loads the photo, whose thumbnail shows.
#[test]
fn open_image_without_a_portal_uses_the_in_app_chooser() {
    if !have("Xvfb") || !have("import") || !have("xdotool") {
        eprintln!("SKIPPED open_image_without_a_portal_uses_the_in_app_chooser: needs Xvfb, ImageMagick's import and xdotool (apt-get install xvfb imagemagick xdotool)");
        return;
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-dialog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let photo = tmp.join("green.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([30, 200, 60]))
        .save(&photo)
        .unwrap();
    let runtime = tmp.join("xdg-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // No zenity: PATH keeps only the folders without one.
    let path: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|d| !d.join("zenity").exists())
        .collect();
    let path = std::env::join_paths(path).unwrap();

    let display = format!(":{}", 110 + std::process::id() % 9);
    let _xvfb = Kill(
        Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1400x900x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Xvfb"),
    );
    std::thread::sleep(Duration::from_millis(800));
    let log = tmp.join("app.log");
    let mut app = Kill(
        Command::new(env!("CARGO_BIN_EXE_pathscope"))
            .arg("gui")
            .current_dir(&tmp)
            .env("DISPLAY", &display)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("PATHSCOPE_AUTOSAVE", tmp.join("autosave.pathscope"))
            .env("PATH", &path)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("PATHSCOPE_FILE_DIALOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting pathscope"),
    );
    let app_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let shot = |name: &str| tmp.join(format!("{name}.png"));

    // The window is up, with its top bar's buttons (Open model…, Default model, Open
    // image…, Session: Export figure… is disabled until maps exist, in another fill).
    let start = Instant::now();
    let buttons = loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no top bar after 120 s; app log:\n{}",
            app_log()
        );
        if let Ok(Some(status)) = app.0.try_wait() {
            panic!("pathscope exited with {status}: {}", app_log());
        }
        std::thread::sleep(Duration::from_secs(1));
        if let Some(img) = screenshot(&display, &shot("before")) {
            let b = top_bar_buttons(&img);
            if b.len() >= 4 {
                break b;
            }
        }
    };
    let before = screenshot(&display, &shot("before")).expect("a screenshot");
    assert!(green_pixels(&before) < 500, "the test photo is not shown yet");

    let (x, y) = buttons[2];
    xdotool(&display, &["mousemove", &x.to_string(), &y.to_string(), "click", "1"]);
    // The portal fails at once, so the chooser is up well within a few seconds.
    std::thread::sleep(Duration::from_secs(3));
    let chooser = screenshot(&display, &shot("chooser")).expect("a screenshot");
    // Without a window manager, keys go to the focused window: focus it, then type.
    let window = Command::new("xdotool")
        .args(["search", "--name", "^Pathscope$"])
        .env("DISPLAY", &display)
        .output()
        .expect("xdotool search");
    let window = String::from_utf8_lossy(&window.stdout);
    let window = window
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no Pathscope window; log:\n{}", app_log()));
    xdotool(&display, &["windowfocus", "--sync", window]);
    xdotool(&display, &["key", "ctrl+a"]);
    xdotool(&display, &["type", "--delay", "15", photo.to_str().unwrap()]);
    xdotool(&display, &["key", "Return"]);

    let start = Instant::now();
    let mut green = 0;
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(after) = screenshot(&display, &shot("after")) {
            green = green_pixels(&after);
            // The 112-pixel thumbnail is about 12 500 pixels of the photo's green.
            if green > 8000 {
                eprintln!(
                    "photo opened through the in-app chooser after {:?}: {green} green pixels; screenshots in {}",
                    start.elapsed(),
                    tmp.display()
                );
                return;
            }
        }
    }
    let chooser_changed = chooser != before;
    panic!(
        "the typed photo is not shown ({green} green pixels; the screen changed after the click: {chooser_changed}); screenshots in {}; app log:\n{}",
        tmp.display(),
        app_log()
    );
}
