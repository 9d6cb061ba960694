//! The WGSL heatmap shader against its CPU reference (`render::heatmap::colorize_at`): every
//! colormap, with and without a photo, several zooms, centres and panel sizes, three overlay
//! amounts, on a map holding values past ±range, exactly ±range, ±0, ±∞ and NaN. Every
//! channel of every pixel must agree within 1/255.
//!
//! Runs on whatever adapter wgpu finds (lavapipe on CI; `WGPU_BACKEND=gl` picks llvmpipe GL).
//! With no adapter at all it prints `SKIPPED: …` and returns.
#![cfg(feature = "studio")]

use eframe::egui;
use eframe::egui_wgpu::wgpu;
use egui_kittest::Harness;
use image::{Rgb, RgbImage};
use pathscope::render::colormap::Colormap;
use pathscope::render::heatmap::{colorize_at, render_offscreen, HeatmapRenderer, HeatmapStyle};

fn gpu() -> Option<(wgpu::Device, wgpu::Queue, String)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = match pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())) {
        Ok(adapter) => adapter,
        Err(e) => {
            println!("SKIPPED: no wgpu adapter ({e})");
            return None;
        }
    };
    let info = adapter.get_info();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
        .expect("adapter found, but no device");
    Some((
        device,
        queue,
        format!("{} ({:?}, {})", info.name, info.backend, info.driver_info),
    ))
}

/// Signed values up to ±1.9 × range, with the special values sprinkled over the map. Two of
/// them land exactly halfway between LUT entries (64.5 diverging, 66.5 sequential), where
/// WGSL's half-to-even `round` would pick another entry than `Colormap::sample`.
fn test_map(w: u32, h: u32) -> Vec<f32> {
    (0..w * h)
        .map(|i| match i % 19 {
            0 => 0.0,
            1 => -0.0,
            2 => f32::NAN,
            3 => 1.0,
            4 => -1.0,
            5 if i % 38 == 5 => f32::INFINITY,
            5 => f32::NEG_INFINITY,
            6 => 64.5 / 127.5 - 1.0,
            7 => 66.5 / 255.0,
            _ => (i as f32 * 0.6173).sin() * 1.9 * (i as f32 * 0.0411).cos(),
        })
        .collect()
}

#[test]
fn gpu_heatmap_matches_cpu_reference_within_one_level() {
    let Some((device, queue, adapter)) = gpu() else { return };
    let (w, h) = (32, 24);
    let map = test_map(w, h);
    // A photo of another size than the map: both sides sample it at the same map coordinate.
    let photo = RgbImage::from_fn(48, 36, |x, y| {
        Rgb([(x * 5 + y * 3) as u8, (200 - y * 5) as u8, (x * y * 3) as u8])
    });
    // (zoom, centre, panel size). Centres off the middle, and panels larger than the map
    // (2.5× and odd sizes), so the view transform and nearest-texel rounding are exercised.
    let views = [
        (1.0, [0.5, 0.5], (w, h)),
        (1.0, [0.5, 0.5], (80, 60)),
        (2.0, [0.31, 0.66], (w, h)),
        (3.0, [0.8, 0.2], (51, 37)),
    ];
    let (mut worst, mut differing, mut channels, mut renders) = (0u8, 0usize, 0usize, 0usize);
    for colormap in Colormap::ALL {
        for photo in [None, Some(&photo)] {
            for &(zoom, center, (out_w, out_h)) in &views {
                for overlay in [1.0, 0.0, 0.35] {
                    let style = HeatmapStyle {
                        colormap,
                        range: 1.0,
                        overlay,
                        zoom,
                        center,
                    };
                    let gpu = render_offscreen(&device, &queue, &map, w, h, photo, &style, out_w, out_h);
                    let cpu = colorize_at(&map, w, h, photo, &style, out_w, out_h);
                    let case = format!("{style:?}, photo {}, {out_w}×{out_h}", photo.is_some());
                    for ((x, y, g), c) in gpu.enumerate_pixels().zip(cpu.pixels()) {
                        assert_eq!(g[3], 255, "{case}: pixel ({x},{y}) not drawn");
                        for ch in 0..3 {
                            let d = g[ch].abs_diff(c[ch]);
                            assert!(d <= 1, "{case}: ({x},{y}) GPU {:?} vs CPU {:?} on {adapter}", g.0, c.0);
                            worst = worst.max(d);
                            differing += (d > 0) as usize;
                        }
                        channels += 3;
                    }
                    renders += 1;
                }
            }
        }
    }
    println!(
        "{renders} renders on {adapter}: max |GPU - CPU| = {worst}/255; {differing} of {channels} channels differ"
    );
}

/// The panels an app paints each frame: (id, rect in points, style).
struct Panels(Vec<(u64, egui::Rect, HeatmapStyle)>);

impl eframe::App for Panels {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        for &(id, rect, style) in &self.0 {
            HeatmapRenderer::paint(ui, rect, id, style);
        }
    }
}

/// The same shader through egui: `install`, `upload` and `paint` in an eframe app rendered by
/// egui_kittest (Rgba8Unorm target). Two panels with their own styles in one frame, the second
/// partly off-screen, where egui clamps the viewport but the map must not be squashed.
#[test]
fn egui_paint_callback_draws_the_reference_image() {
    if gpu().is_none() {
        return;
    }
    let (w, h) = (20, 15);
    let map = test_map(w, h);
    let photo = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 11) as u8, (y * 13) as u8, 90]));
    let panels = vec![
        (
            1,
            egui::Rect::from_min_size(egui::pos2(10.0, 10.0), egui::vec2(60.0, 45.0)),
            HeatmapStyle::default(),
        ),
        (
            2,
            egui::Rect::from_min_size(egui::pos2(120.0, 70.0), egui::vec2(80.0, 60.0)),
            HeatmapStyle {
                colormap: Colormap::Inferno,
                range: 1.3,
                overlay: 0.6,
                zoom: 2.0,
                center: [0.6, 0.4],
            },
        ),
    ];
    let (map_ref, photo_ref, panels_ref) = (&map, &photo, panels.clone());
    let mut harness = Harness::builder()
        .with_size(egui::vec2(160.0, 120.0))
        .with_pixels_per_point(1.0)
        .wgpu()
        .build_eframe(move |cc| {
            let rs = cc
                .wgpu_render_state
                .as_ref()
                .expect("egui_kittest's wgpu renderer gives a render state");
            HeatmapRenderer::install(rs);
            for &(id, ..) in &panels_ref {
                HeatmapRenderer::upload(rs, id, map_ref, w, h, Some(photo_ref));
            }
            Panels(panels_ref)
        });
    harness.run();
    let screen = harness.render().expect("egui_kittest render");
    let mut worst = 0;
    for (id, rect, style) in panels {
        let want = colorize_at(
            &map,
            w,
            h,
            Some(&photo),
            &style,
            rect.width() as u32,
            rect.height() as u32,
        );
        let (x0, y0) = (rect.min.x as u32, rect.min.y as u32);
        for (x, y, c) in want.enumerate_pixels() {
            let Some(g) = screen.get_pixel_checked(x0 + x, y0 + y) else {
                continue;
            };
            for ch in 0..3 {
                let d = g[ch].abs_diff(c[ch]);
                assert!(d <= 1, "panel {id} ({x},{y}): screen {:?} vs CPU {:?}", g.0, c.0);
                worst = worst.max(d);
            }
        }
    }
    println!("egui paint callback: max |screen - CPU| = {worst}/255");
}
