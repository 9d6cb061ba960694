//! Figures: the PNG's map panels are the CPU colormap of their maps, pixel for pixel; the
//! SVG is valid XML with the colour bar's ticks as text; the PDF opens in poppler and
//! renders like the PNG; the settings and command embedded in each file read back; the
//! `figure` command writes the figure and the raw data.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use image::RgbImage;
use pathscope::attribution::display::{ClipRule, DisplayMode};
use pathscope::export::figure::{ColorbarPlacement, Column, Figure, FigureStyle, Item, Layout, MapRow, Scene};
use pathscope::export::metadata::FigureMetadata;
use pathscope::export::raster::{pixel_rect, scale};
use pathscope::export::{figure_bytes, write_figure, ExportError, FigureFormat};
use pathscope::model::preprocess::{load_rgb, resize_and_crop};
use pathscope::render::colormap::Colormap;
use pathscope::render::heatmap::colorize_at;

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("figures").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cat() -> Arc<RgbImage> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png");
    Arc::new(resize_and_crop(&load_rgb(&p).unwrap()))
}

/// A smooth signed map in [-0.5, 0.5] with a few sharp features, 224 × 224.
fn synthetic_map(phase: f32) -> Arc<Vec<f32>> {
    Arc::new(
        (0..224 * 224)
            .map(|i| {
                let (x, y) = ((i % 224) as f32 / 223.0, (i / 224) as f32 / 223.0);
                let v = 0.5 * ((6.0 * x + phase).sin() * (4.0 * y).cos());
                if (i * 7919) % 97 == 0 {
                    -v
                } else {
                    v
                }
            })
            .collect(),
    )
}

/// Two rows (two maps) × photo, signed, absolute, negative; max-abs range so the ticks are
/// known: ±0.5 → -0.4 … 0.4.
fn sample_figure(overlay: f32, colorbar: ColorbarPlacement) -> Figure {
    let photo = cat();
    let rows = vec![
        MapRow {
            label: "first map".into(),
            map: synthetic_map(0.0),
            width: 224,
            height: 224,
            photo: photo.clone(),
        },
        MapRow {
            label: "second (é×)".into(),
            map: synthetic_map(1.3),
            width: 224,
            height: 224,
            photo,
        },
    ];
    let columns = [
        Column::Photo,
        Column::Mode(DisplayMode::Signed),
        Column::Mode(DisplayMode::Absolute),
        Column::Mode(DisplayMode::NegativeOnly),
    ];
    let style = FigureStyle {
        width_mm: 120.0,
        dpi: 150.0,
        clip: ClipRule::MaxAbs,
        sequential: Colormap::Viridis,
        overlay,
        colorbar,
        ..FigureStyle::default()
    };
    Figure::method_grid(
        &rows,
        &columns,
        Layout::Auto,
        style,
        Some("A caption − with settings: σ = 0.15".into()),
    )
    .unwrap()
}

fn meta() -> FigureMetadata {
    FigureMetadata {
        title: "test figure".into(),
        command: "pathscope figure --images 'a (1).png' --out café.pdf".into(),
        settings: serde_json::json!({"layout": "auto", "dpi": 150.0, "methods": ["ig", "ig:blur"], "note": "quotes \" and <tags> & (parens)"}),
    }
}

fn decode_png(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

fn heatmaps(scene: &Scene) -> Vec<&Item> {
    scene
        .items
        .iter()
        .filter(|i| matches!(i, Item::Heatmap { .. }))
        .collect()
}

#[test]
fn png_map_panels_equal_the_cpu_colormap() {
    for overlay in [1.0, 0.0] {
        let scene = sample_figure(overlay, ColorbarPlacement::Column).layout().unwrap();
        let png = decode_png(&figure_bytes(&scene, FigureFormat::Png, &meta()).unwrap());
        let k = scale(scene.dpi);
        assert_eq!(png.width(), (scene.width * k).round() as u32);
        let panels = heatmaps(&scene);
        assert_eq!(panels.len(), 6);
        for item in panels {
            let Item::Heatmap {
                rect,
                map,
                width,
                height,
                photo,
                style,
            } = item
            else {
                unreachable!()
            };
            let (x0, y0, x1, y1) = pixel_rect(*rect, k);
            assert!(x1 - x0 > 100, "panels are large enough to mean something");
            let want = colorize_at(map, *width, *height, photo.as_deref(), style, x1 - x0, y1 - y0);
            let mut differing = 0;
            for (x, y, p) in want.enumerate_pixels() {
                if png.get_pixel(x0 + x, y0 + y).0 != [p.0[0], p.0[1], p.0[2]] {
                    differing += 1;
                }
            }
            assert_eq!(
                differing, 0,
                "overlay {overlay}: panel at {x0},{y0} differs from colorize_at"
            );
        }
    }
}

/// The bar under a column shows the colour the panels use for each value: with the map
/// alone (overlay 0), a panel pixel of value v and the bar at v agree to one LUT entry.
#[test]
fn colour_bars_show_the_panels_colours() {
    let scene = sample_figure(0.0, ColorbarPlacement::Column).layout().unwrap();
    let png = decode_png(&figure_bytes(&scene, FigureFormat::Png, &meta()).unwrap());
    let k = scale(scene.dpi);
    let lut = Colormap::RdBu.lut();
    // The first bar is the signed column's RdBu bar: 256 fills, the first one spans it all.
    let bar = scene
        .items
        .iter()
        .find_map(|i| match i {
            Item::Fill { rect, color } if *color == lut[0] => Some(*rect),
            _ => None,
        })
        .expect("an RdBu bar");
    let (bx0, by0, bx1, by1) = pixel_rect(bar, k);
    let y = (by0 + by1) / 2;
    for t in [0.0f32, 0.1, 0.25, 0.5, 0.8, 1.0] {
        let x = (bx0 as f32 + t * (bx1 - bx0) as f32).min(bx1 as f32 - 1.0) as u32;
        let got = png.get_pixel(x, y).0;
        let centre = (t * 255.0).round() as i32;
        let near = (centre - 2..=centre + 2)
            .filter(|e| (0..256).contains(e))
            .any(|e| lut[e as usize] == got);
        assert!(near, "bar at t = {t}: {got:?} is not LUT entry ≈ {centre}");
    }
    // Tick marks sit under the bar, inside its ends.
    let ticks: Vec<f32> = scene
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Line { from, .. } if (from[1] - (bar.y + bar.h)).abs() < 1e-3 && from[0] <= bar.x + bar.w + 0.01 => {
                Some(from[0])
            }
            _ => None,
        })
        .collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
}

#[test]
fn svg_parses_and_has_the_colorbar_ticks_as_text() {
    let scene = sample_figure(1.0, ColorbarPlacement::Shared).layout().unwrap();
    let bytes = figure_bytes(&scene, FigureFormat::Svg, &meta()).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    assert!(root.attribute("width").unwrap().ends_with("pt"));
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect();
    // Signed maps in ±0.5 (max |A|): ticks -0.4 … 0.4 on the shared RdBu bar.
    for tick in ["-0.4", "-0.2", "0", "0.2", "0.4"] {
        assert!(texts.iter().any(|t| t == tick), "tick {tick} missing from {texts:?}");
    }
    for label in ["signed", "absolute", "negative", "first map", "second (é×)"] {
        assert!(texts.iter().any(|t| t == label), "{label} missing");
    }
    // Text outside WinAnsi is replaced the same way in every format.
    assert!(texts
        .iter()
        .any(|t| t.contains("A caption - with settings: sigma = 0.15")));
    // The panels are embedded PNGs; the bars are vector rectangles.
    let images: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("image")).collect();
    assert_eq!(images.len(), 2 + 6, "2 photos + 6 maps");
    let href = images[0].attribute(("http://www.w3.org/1999/xlink", "href")).unwrap();
    assert!(href.starts_with("data:image/png;base64,"));
    let rects = doc.descendants().filter(|n| n.has_tag_name("rect")).count();
    assert!(rects >= 2 * 256, "two shared bars of 256 rectangles, got {rects}");
    let fonts: Vec<&str> = doc.descendants().filter_map(|n| n.attribute("font-family")).collect();
    assert!(fonts.iter().all(|f| f.starts_with("'Liberation Sans'")), "{fonts:?}");
}

#[test]
fn metadata_round_trips_in_png_svg_and_pdf() {
    let scene = sample_figure(1.0, ColorbarPlacement::Panel).layout().unwrap();
    for format in FigureFormat::ALL {
        let bytes = figure_bytes(&scene, format, &meta()).unwrap();
        let back = FigureMetadata::read(&bytes).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(back, meta(), "{format:?}");
    }
    assert!(matches!(FigureMetadata::read(b"GIF89a"), Err(ExportError::Metadata(_))));
}

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("-v").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} (poppler-utils) is missing; .ci/run installs it"
        );
        eprintln!("SKIPPED: {name} not found (install poppler-utils)");
    }
    found
}

#[test]
fn pdf_opens_in_poppler_and_renders_like_the_png() {
    if !tool("pdftoppm") {
        return;
    }
    let dir = tmp("pdf");
    // At 300 dpi the panels are larger than their 224-texel maps, so both renderers
    // magnify by nearest texel (below that, poppler filters where we sample).
    let mut fig = sample_figure(1.0, ColorbarPlacement::Column);
    fig.style.dpi = 300.0;
    let scene = fig.layout().unwrap();
    let pdf = dir.join("figure.pdf");
    write_figure(&pdf, &scene, FigureFormat::Pdf, &meta()).unwrap();
    let png_path = dir.join("export.png");
    write_figure(&png_path, &scene, FigureFormat::Png, &meta()).unwrap();
    let png = decode_png(&std::fs::read(&png_path).unwrap());

    let out = Command::new("pdftoppm")
        .args(["-r", &format!("{}", scene.dpi), "-png", "-singlefile"])
        .arg(&pdf)
        .arg(dir.join("rendered"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rendered = image::open(dir.join("rendered.png")).unwrap().to_rgb8();
    let (w, h) = (png.width().min(rendered.width()), png.height().min(rendered.height()));
    assert!(png.width().abs_diff(rendered.width()) <= 1 && png.height().abs_diff(rendered.height()) <= 1);

    let mean_diff = |x0: u32, y0: u32, x1: u32, y1: u32| {
        let mut sum = 0u64;
        for y in y0..y1 {
            for x in x0..x1 {
                let (a, b) = (png.get_pixel(x, y).0, rendered.get_pixel(x, y).0);
                sum += (0..3).map(|c| a[c].abs_diff(b[c]) as u64).sum::<u64>();
            }
        }
        sum as f64 / (3 * (x1 - x0) as u64 * (y1 - y0) as u64) as f64
    };
    // The page as a whole: text is antialiased by two rasterisers, so allow a little.
    let whole = mean_diff(0, 0, w, h);
    eprintln!("mean |PDF - PNG| over the page: {whole:.2}");
    assert!(whole < 5.0, "mean |PDF − PNG| over the page: {whole:.2}");
    // Inside each map panel (a pixel in from the edges), both draw nearest texels.
    let k = scale(scene.dpi);
    for item in heatmaps(&scene) {
        let Item::Heatmap { rect, .. } = item else {
            unreachable!()
        };
        let (x0, y0, x1, y1) = pixel_rect(*rect, k);
        let d = mean_diff(x0 + 2, y0 + 2, (x1 - 2).min(w), (y1 - 2).min(h));
        eprintln!("panel at {x0},{y0}: mean |PDF - PNG| {d:.2}");
        assert!(d < 4.0, "panel at {x0},{y0}: mean |PDF − PNG| {d:.2}");
    }
    // The figure font is embedded, and pdfinfo reads the command.
    if tool("pdffonts") {
        let fonts = Command::new("pdffonts").arg(&pdf).output().unwrap();
        let fonts = String::from_utf8_lossy(&fonts.stdout);
        let line = fonts
            .lines()
            .find(|l| l.starts_with("LiberationSans"))
            .unwrap_or_default();
        assert!(line.contains("TrueType") && line.contains(" yes "), "{fonts}");
    }
    if tool("pdfinfo") {
        let info = Command::new("pdfinfo").arg(&pdf).output().unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains("Subject:") && info.contains("pathscope figure --images"),
            "{info}"
        );
        assert!(info.contains("Creator:") && info.contains("pathscope"), "{info}");
    }
}

#[test]
fn writes_are_atomic_and_errors_are_values() {
    let dir = tmp("atomic");
    let scene = sample_figure(1.0, ColorbarPlacement::None).layout().unwrap();
    let missing = dir.join("no/such/dir/figure.png");
    assert!(matches!(
        write_figure(&missing, &scene, FigureFormat::Png, &meta()),
        Err(ExportError::Io { .. })
    ));
    let ok = dir.join("figure.png");
    write_figure(&ok, &scene, FigureFormat::Png, &meta()).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["figure.png"], "no temporary file is left behind");
    // A size no page has is an error, not a panic or a huge allocation.
    let mut fig = sample_figure(1.0, ColorbarPlacement::None);
    fig.style.dpi = 2400.0;
    fig.style.width_mm = 2000.0;
    let scene = fig.layout().unwrap();
    assert!(matches!(
        figure_bytes(&scene, FigureFormat::Png, &meta()),
        Err(ExportError::InvalidFigure(_))
    ));
}

fn pathscope(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pathscope"))
        .args(args)
        .output()
        .unwrap()
}

/// `pathscope figure` end to end on the embedded model: the figure, the settings and the
/// command in its metadata, and the raw data.
#[test]
fn figure_command_writes_figure_metadata_and_data() {
    let dir = tmp("cli");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png");
    let out = dir.join("fig.svg");
    let data = dir.join("data");
    let args = [
        "figure",
        "--images",
        image.to_str().unwrap(),
        "--methods",
        "gradient,ig",
        "--modes",
        "photo,signed,absolute",
        "--steps",
        "3",
        "--width",
        "120mm",
        "--caption",
        "--out",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    let r = pathscope(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let meta = FigureMetadata::read(&std::fs::read(&out).unwrap()).unwrap();
    assert!(
        meta.command.starts_with("pathscope figure --images ") && meta.command.contains("--methods gradient,ig"),
        "{}",
        meta.command
    );
    let s = &meta.settings;
    assert_eq!(s["methods"], serde_json::json!(["gradient", "ig"]));
    assert_eq!(s["modes"], serde_json::json!(["photo", "signed", "absolute"]));
    assert_eq!(s["images"][0]["target"], 285);
    assert_eq!(s["images"][0]["label"], "Egyptian cat");
    assert_eq!(s["style"]["width_mm"], 120.0);
    assert_eq!(s["method_options"]["steps"], 3);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains(">Gradient</text>") && svg.contains(">IG</text>"));
    assert!(svg.contains("Egyptian cat"), "the caption names the target");

    let st = std::fs::read(data.join("attributions.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&st).unwrap();
    let mut names = tensors.names();
    names.sort();
    assert_eq!(names, ["chelsea_cat/gradient", "chelsea_cat/ig"]);
    assert_eq!(tensors.tensor("chelsea_cat/ig").unwrap().shape(), [3, 224, 224]);
    let (_, header) = safetensors::SafeTensors::read_metadata(&st).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["command"], meta.command);
    let npy = std::fs::read(data.join("chelsea_cat__ig.npy")).unwrap();
    let (values, shape) = pathscope::export::npy::parse_npy_f32(&npy).unwrap();
    assert_eq!(shape, [3, 224, 224]);
    let raw = tensors.tensor("chelsea_cat/ig").unwrap();
    let first = f32::from_le_bytes(raw.data()[..4].try_into().unwrap());
    assert_eq!(values[0], first, "the .npy and the safetensors hold the same map");
    let trace = std::fs::read(data.join("chelsea_cat__ig.trace.safetensors")).unwrap();
    let trace = safetensors::SafeTensors::deserialize(&trace).unwrap();
    let steps = trace.tensor("score").unwrap().shape()[0];
    assert!(steps >= 3, "{steps} steps");
    assert_eq!(trace.tensor("contribution").unwrap().shape()[1..], [3, 224, 224]);
    assert!(!data.join("chelsea_cat__gradient.trace.safetensors").exists());
}

#[test]
fn figure_command_refuses_bad_input_without_writing() {
    let dir = tmp("cli_bad");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png");
    let out = dir.join("fig.png");
    let base = [
        "figure",
        "--images",
        image.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for (extra, says) in [
        (vec!["--methods", "ig:sideways"], "sideways"),
        (vec!["--modes", "signed,upside-down"], "upside-down"),
        (vec!["--layout", "1x1", "--methods", "gradient"], "layout 1x1"),
        (vec!["--width", "0mm"], "positive"),
        (vec!["--colormap", "rdbu"], "unsigned"),
        (vec!["--clip", "p200"], "range rule"),
        (vec!["--format", "gif"], "gif"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(&extra);
        let r = pathscope(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{extra:?} succeeded");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{extra:?} left a file");
    }
}
