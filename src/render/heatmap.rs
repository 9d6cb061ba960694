//! Attribution maps on screen: `shaders/heatmap.wgsl` draws a map through an egui_wgpu paint
//! callback, and [`colorize`] is the CPU reference of the same arithmetic (nearest-texel view
//! transform, nearest LUT entry, the photo blend), so the studio, the exporters and the tests
//! agree pixel for pixel. With `overlay = 1` and `zoom = 1` it reproduces
//! [`crate::export::heatmap::overlay`] exactly for every finite value. NaN means "no value"
//! here (white, or the bare grey photo when overlaid); the exporter paints NaN black.
//!
//! GPU resources are made once: [`HeatmapRenderer::install`] puts the pipeline and one LUT
//! texture per [`Colormap`] into egui_wgpu's `callback_resources`; [`HeatmapRenderer::upload`]
//! sends a panel's map and photo when they change; each frame only the panel's 48-byte uniform
//! buffer is written (in `prepare`).

use std::collections::HashMap;

use eframe::egui;
use eframe::egui_wgpu::{self, wgpu};
use image::{RgbImage, Rgba, RgbaImage};
use wgpu::util::DeviceExt as _;

use crate::render::colormap::Colormap;

const SHADER: &str = include_str!("../../shaders/heatmap.wgsl");

/// How a map is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeatmapStyle {
    pub colormap: Colormap,
    /// The value mapped to the end of the scale: ±`range` on a diverging scale, [0, `range`]
    /// on a sequential one.
    pub range: f32,
    /// 0 = the colormap alone on white, 1 = the colour blended over the grey photo with an
    /// opacity growing with |value| (the exporter's look); in between, the two mixed.
    pub overlay: f32,
    /// Magnification, ≥ 1 (1 shows the whole map).
    pub zoom: f32,
    /// The view centre in [0, 1] map coordinates; panels that share it zoom and pan together.
    /// Clamped so the view never leaves the map.
    pub center: [f32; 2],
}

impl Default for HeatmapStyle {
    fn default() -> Self {
        Self {
            colormap: Colormap::RdBu,
            range: 1.0,
            overlay: 1.0,
            zoom: 1.0,
            center: [0.5, 0.5],
        }
    }
}

/// The shader's uniforms (`Params` in heatmap.wgsl). The CPU reference reads the same struct,
/// so both sides see identical, already-sanitised numbers.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    origin: [f32; 2],
    size: [f32; 2],
    center: [f32; 2],
    zoom: f32,
    range: f32,
    overlay: f32,
    diverging: u32,
    _pad: [u32; 2],
}

impl Params {
    /// `origin`/`size`: the output rectangle in target pixels.
    fn new(style: &HeatmapStyle, origin: [f32; 2], size: [f32; 2]) -> Self {
        let zoom = if style.zoom.is_finite() {
            style.zoom.max(1.0)
        } else {
            1.0
        };
        let half = 0.5 / zoom;
        let center = style
            .center
            .map(|c| if c.is_finite() { c.clamp(half, 1.0 - half) } else { 0.5 });
        Self {
            origin,
            size,
            center,
            zoom,
            // As the exporter: a zero or NaN range becomes the smallest normal float, never a
            // division by zero; an infinite one the largest finite.
            range: if style.range.is_nan() {
                f32::MIN_POSITIVE
            } else {
                style.range.clamp(f32::MIN_POSITIVE, f32::MAX)
            },
            overlay: if style.overlay.is_finite() {
                style.overlay.clamp(0.0, 1.0)
            } else {
                1.0
            },
            diverging: style.colormap.is_diverging() as u32,
            _pad: [0; 2],
        }
    }
}

/// Nearest texel of map coordinate `m` along an axis of `n` texels (the shader's `texel`).
fn texel(m: f32, n: u32) -> u32 {
    ((m * n as f32).floor() as i32).clamp(0, n as i32 - 1) as u32
}

/// The colour of value `v` over photo colour `rgb` (the shader's fragment body).
fn shade(p: &Params, lut: &[[u8; 3]], v: f32, rgb: [u8; 3]) -> [u8; 3] {
    let grey = 0.299 * rgb[0] as f32 + 0.587 * rgb[1] as f32 + 0.114 * rgb[2] as f32;
    let (map_only, overlaid) = if v.is_nan() {
        ([255.0; 3], [grey; 3])
    } else {
        let t = if v.abs() >= p.range { v.signum() } else { v / p.range };
        let s = if p.diverging != 0 { 0.5 + 0.5 * t } else { t.max(0.0) };
        let c = Colormap::sample(lut, s).map(f32::from);
        let a = 0.15 + 0.8 * t.abs().sqrt();
        (c, c.map(|c| (1.0 - a) * grey + a * c))
    };
    std::array::from_fn(|i| {
        let out = (1.0 - p.overlay) * map_only[i] + p.overlay * overlaid[i];
        out.round().clamp(0.0, 255.0) as u8
    })
}

/// The CPU reference: `map` (row-major `width` × `height`) drawn at its own size.
pub fn colorize(map: &[f32], width: u32, height: u32, photo: Option<&RgbImage>, style: &HeatmapStyle) -> RgbaImage {
    colorize_at(map, width, height, photo, style, width, height)
}

/// [`colorize`] into an `out_w` × `out_h` image (what a panel of that many pixels shows).
/// The photo may have any size; it is sampled at the same map coordinate. Without a photo
/// the background is white.
pub fn colorize_at(
    map: &[f32],
    width: u32,
    height: u32,
    photo: Option<&RgbImage>,
    style: &HeatmapStyle,
    out_w: u32,
    out_h: u32,
) -> RgbaImage {
    assert_eq!(map.len(), width as usize * height as usize, "map is not width × height");
    assert!(width > 0 && height > 0, "empty map");
    let p = Params::new(style, [0.0; 2], [out_w as f32, out_h as f32]);
    let lut = style.colormap.lut();
    RgbaImage::from_fn(out_w, out_h, |x, y| {
        // Same operations, in the same order, as the shader.
        let uv = [(x as f32 + 0.5) / p.size[0], (y as f32 + 0.5) / p.size[1]];
        let m = [
            p.center[0] + (uv[0] - 0.5) / p.zoom,
            p.center[1] + (uv[1] - 0.5) / p.zoom,
        ];
        let v = map[(texel(m[1], height) * width + texel(m[0], width)) as usize];
        let rgb = photo.map_or([255; 3], |ph| {
            ph.get_pixel(texel(m[0], ph.width()), texel(m[1], ph.height())).0
        });
        let [r, g, b] = shade(&p, &lut, v, rgb);
        Rgba([r, g, b, 255])
    })
}

/// One panel's GPU data.
struct Panel {
    params: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// The heatmap pipeline, its LUTs and the panels uploaded so far. Lives in egui_wgpu's
/// `callback_resources` (see [`HeatmapRenderer::install`]).
pub struct HeatmapRenderer {
    pipeline: wgpu::RenderPipeline,
    panel_layout: wgpu::BindGroupLayout,
    /// One bind group per colormap, in [`Colormap::ALL`] order.
    luts: Vec<wgpu::BindGroup>,
    panels: HashMap<u64, Panel>,
}

fn texture_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

/// A 2-D texture with its data, for `textureLoad` only.
fn texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    label: &str,
    format: wgpu::TextureFormat,
    (w, h): (u32, u32),
    data: &[u8],
) -> wgpu::TextureView {
    let max = device.limits().max_texture_dimension_2d;
    assert!(
        w <= max && h <= max,
        "{label}: {w}×{h} exceeds the device's {max}-texel limit"
    );
    let desc = wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    };
    device
        .create_texture_with_data(queue, &desc, wgpu::util::TextureDataOrder::LayerMajor, data)
        .create_view(&wgpu::TextureViewDescriptor::default())
}

impl HeatmapRenderer {
    /// Builds the pipeline for `target_format` and the LUT textures.
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue, target_format: wgpu::TextureFormat) -> Self {
        let panel_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("heatmap panel"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(size_of::<Params>() as u64),
                    },
                    count: None,
                },
                texture_entry(1),
                texture_entry(2),
            ],
        });
        let lut_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("heatmap lut"),
            entries: &[texture_entry(0)],
        });
        let luts = Colormap::ALL
            .iter()
            .map(|cm| {
                let rgba: Vec<u8> = cm.lut().iter().flat_map(|&[r, g, b]| [r, g, b, 255]).collect();
                let view = texture(
                    device,
                    queue,
                    "heatmap lut",
                    wgpu::TextureFormat::Rgba8Unorm,
                    (256, 1),
                    &rgba,
                );
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("heatmap lut"),
                    layout: &lut_layout,
                    entries: &[wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::TextureView(&view),
                    }],
                })
            })
            .collect();
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("heatmap.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("heatmap"),
            bind_group_layouts: &[Some(&panel_layout), Some(&lut_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("heatmap"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target_format,
                    // egui composits premultiplied colour; ours is opaque anyway.
                    blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        Self {
            pipeline,
            panel_layout,
            luts,
            panels: HashMap::new(),
        }
    }

    /// Creates the renderer for egui's target format and stores it in `callback_resources`.
    /// Call once, e.g. in `App::new` with `cc.wgpu_render_state`.
    pub fn install(render_state: &egui_wgpu::RenderState) {
        let renderer = Self::new(&render_state.device, &render_state.queue, render_state.target_format);
        render_state.renderer.write().callback_resources.insert(renderer);
    }

    /// Sends panel `id`'s map (row-major `w` × `h`) and photo to the GPU, replacing what it
    /// had. Call only when the data changed; drawing reuses the textures every frame.
    pub fn upload(
        render_state: &egui_wgpu::RenderState,
        id: u64,
        map: &[f32],
        w: u32,
        h: u32,
        photo: Option<&RgbImage>,
    ) {
        let mut renderer = render_state.renderer.write();
        let this = renderer
            .callback_resources
            .get_mut::<Self>()
            .expect("HeatmapRenderer::install was not called");
        this.upload_panel(&render_state.device, &render_state.queue, id, map, w, h, photo);
    }

    /// Frees panel `id`'s textures.
    pub fn remove(render_state: &egui_wgpu::RenderState, id: u64) {
        if let Some(this) = render_state.renderer.write().callback_resources.get_mut::<Self>() {
            this.panels.remove(&id);
        }
    }

    /// Draws panel `id` into `rect` with `style`. One paint per panel id per frame: the
    /// panel's uniforms hold one style. Draws nothing until the panel was uploaded.
    pub fn paint(ui: &mut egui::Ui, rect: egui::Rect, id: u64, style: HeatmapStyle) {
        ui.painter().add(egui_wgpu::Callback::new_paint_callback(
            rect,
            PaintHeatmap { id, rect, style },
        ));
    }

    #[allow(clippy::too_many_arguments)] // the data of one upload, spelled out
    fn upload_panel(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        id: u64,
        map: &[f32],
        w: u32,
        h: u32,
        photo: Option<&RgbImage>,
    ) {
        assert_eq!(map.len(), w as usize * h as usize, "map is not w × h");
        assert!(w > 0 && h > 0, "empty map");
        let map_view = texture(
            device,
            queue,
            "heatmap map",
            wgpu::TextureFormat::R32Float,
            (w, h),
            bytemuck::cast_slice(map),
        );
        // No photo: one white texel, so the shader has a single path (and the CPU the same).
        let (photo_rgba, photo_size) = match photo {
            Some(p) => (
                p.pixels().flat_map(|px| [px[0], px[1], px[2], 255]).collect(),
                p.dimensions(),
            ),
            None => (vec![255u8; 4], (1, 1)),
        };
        let photo_view = texture(
            device,
            queue,
            "heatmap photo",
            wgpu::TextureFormat::Rgba8Unorm,
            photo_size,
            &photo_rgba,
        );
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("heatmap params"),
            size: size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("heatmap panel"),
            layout: &self.panel_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&map_view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&photo_view),
                },
            ],
        });
        self.panels.insert(id, Panel { params, bind_group });
    }

    fn write_params(&self, queue: &wgpu::Queue, id: u64, params: &Params) {
        if let Some(panel) = self.panels.get(&id) {
            queue.write_buffer(&panel.params, 0, bytemuck::bytes_of(params));
        }
    }

    fn draw(&self, pass: &mut wgpu::RenderPass<'_>, id: u64, colormap: Colormap) {
        let Some(panel) = self.panels.get(&id) else { return };
        let lut = Colormap::ALL
            .iter()
            .position(|&c| c == colormap)
            .expect("Colormap::ALL lists every colormap");
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &panel.bind_group, &[]);
        pass.set_bind_group(1, &self.luts[lut], &[]);
        pass.draw(0..3, 0..1);
    }
}

/// The paint callback of one panel for one frame.
struct PaintHeatmap {
    id: u64,
    rect: egui::Rect,
    style: HeatmapStyle,
}

impl egui_wgpu::CallbackTrait for PaintHeatmap {
    fn prepare(
        &self,
        _device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(renderer) = resources.get::<HeatmapRenderer>() {
            // egui rounds the rect to pixels like this before clamping it to the screen.
            let ppp = screen.pixels_per_point;
            let min = [(self.rect.min.x * ppp).round(), (self.rect.min.y * ppp).round()];
            let max = [(self.rect.max.x * ppp).round(), (self.rect.max.y * ppp).round()];
            let size = [(max[0] - min[0]).max(1.0), (max[1] - min[1]).max(1.0)];
            renderer.write_params(queue, self.id, &Params::new(&self.style, min, size));
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(renderer) = resources.get::<HeatmapRenderer>() {
            renderer.draw(pass, self.id, self.style.colormap);
        }
    }
}

/// Renders `map` with the real pipeline into an `out_w` × `out_h` Rgba8Unorm texture and
/// reads it back: the GPU side of the parity test, and a way to render without a window.
#[allow(clippy::too_many_arguments)] // mirrors colorize_at plus the device
pub fn render_offscreen(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    map: &[f32],
    w: u32,
    h: u32,
    photo: Option<&RgbImage>,
    style: &HeatmapStyle,
    out_w: u32,
    out_h: u32,
) -> RgbaImage {
    assert!(out_w > 0 && out_h > 0, "empty output");
    let format = wgpu::TextureFormat::Rgba8Unorm;
    let mut renderer = HeatmapRenderer::new(device, queue, format);
    renderer.upload_panel(device, queue, 0, map, w, h, photo);
    renderer.write_params(queue, 0, &Params::new(style, [0.0; 2], [out_w as f32, out_h as f32]));

    let target = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("heatmap offscreen"),
        size: wgpu::Extent3d {
            width: out_w,
            height: out_h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = target.create_view(&wgpu::TextureViewDescriptor::default());
    // Buffer rows must be multiples of 256 bytes.
    let row = (4 * out_w).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("heatmap readback"),
        size: row as u64 * out_h as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("heatmap offscreen"),
    });
    {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("heatmap offscreen"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                // Transparent black: a pixel the shader missed shows as alpha 0 in the test.
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        renderer.draw(&mut pass, 0, style.colormap);
    }
    encoder.copy_texture_to_buffer(
        target.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: Some(out_h),
            },
        },
        wgpu::Extent3d {
            width: out_w,
            height: out_h,
            depth_or_array_layers: 1,
        },
    );
    queue.submit([encoder.finish()]);

    let (tx, rx) = std::sync::mpsc::channel();
    readback.map_async(wgpu::MapMode::Read, .., move |r| tx.send(r).unwrap_or(()));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("GPU did not finish the heatmap render");
    rx.recv()
        .expect("map_async callback dropped")
        .expect("could not map the readback buffer");
    let data = readback.get_mapped_range(..).expect("readback buffer not mapped");
    let mut out = RgbaImage::new(out_w, out_h);
    for (y, src) in data.chunks_exact(row as usize).enumerate() {
        let dst = &mut out.as_mut()[y * 4 * out_w as usize..][..4 * out_w as usize];
        dst.copy_from_slice(&src[..4 * out_w as usize]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::heatmap::overlay;

    /// A signed map with values past ±range, exact ±0 and exactly ±range, and a photo.
    fn fixture(w: u32, h: u32) -> (Vec<f32>, RgbImage) {
        let map = (0..w * h)
            .map(|i| match i % 23 {
                0 => 0.0,
                1 => -0.0,
                2 => 1.0,
                3 => -1.0,
                _ => (i as f32 * 0.7371).sin() * 1.6 + (i as f32 * 0.1913).cos() * 0.3,
            })
            .collect();
        let photo = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 13 + y * 7) as u8, (x * 3 + y * 29) as u8, (x * y) as u8])
        });
        (map, photo)
    }

    #[test]
    fn colorize_with_overlay_1_zoom_1_is_the_exporters_overlay() {
        let (w, h) = (29, 17);
        let (map, photo) = fixture(w, h);
        for colormap in Colormap::ALL {
            // Sequential maps are usually non-negative; the signed fixture also checks that
            // negatives are handled as the exporter does.
            for range in [1.0, 0.37] {
                let style = HeatmapStyle {
                    colormap,
                    range,
                    ..Default::default()
                };
                let ours = colorize(&map, w, h, Some(&photo), &style);
                let theirs = overlay(&photo, &map, range, colormap);
                for (x, y, px) in theirs.enumerate_pixels() {
                    let o = ours.get_pixel(x, y).0;
                    assert_eq!(
                        [o[0], o[1], o[2], o[3]],
                        [px[0], px[1], px[2], 255],
                        "{colormap:?} range {range} at ({x},{y})"
                    );
                }
            }
        }
    }

    #[test]
    fn overlay_0_is_the_bare_colormap_and_nan_is_white_or_photo() {
        let lut = Colormap::Viridis.lut();
        let map = [0.0, 0.5, 2.0, f32::NAN];
        let photo = RgbImage::from_pixel(4, 1, image::Rgb([10, 200, 30]));
        let bare = HeatmapStyle {
            colormap: Colormap::Viridis,
            overlay: 0.0,
            ..Default::default()
        };
        let img = colorize(&map, 4, 1, Some(&photo), &bare);
        for (i, t) in [0.0, 0.5, 1.0].into_iter().enumerate() {
            let [r, g, b] = Colormap::sample(&lut, t);
            assert_eq!(img.get_pixel(i as u32, 0).0, [r, g, b, 255]);
        }
        assert_eq!(img.get_pixel(3, 0).0, [255, 255, 255, 255]);
        let over = colorize(&map, 4, 1, Some(&photo), &HeatmapStyle { overlay: 1.0, ..bare });
        let grey = (0.299f32 * 10.0 + 0.587 * 200.0 + 0.114 * 30.0).round() as u8;
        assert_eq!(over.get_pixel(3, 0).0, [grey, grey, grey, 255]);
    }

    #[test]
    fn zoom_and_center_select_the_texels_in_view() {
        // Texel value = its index; zoom 2 centred on the top-left quadrant of a 4×4 map
        // shows texels (0,0) (1,0) / (0,1) (1,1), each over 2×2 pixels.
        let map: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let style = HeatmapStyle {
            colormap: Colormap::Reds,
            range: 15.0,
            overlay: 0.0,
            zoom: 2.0,
            center: [0.25, 0.25],
        };
        let img = colorize(&map, 4, 4, None, &style);
        let unzoomed = colorize(&map, 4, 4, None, &HeatmapStyle { zoom: 1.0, ..style });
        for (x, y, px) in img.enumerate_pixels() {
            assert_eq!(px, unzoomed.get_pixel(x / 2, y / 2), "({x},{y})");
        }
        // A centre off the map is pulled back so the view stays on it.
        let far = colorize(
            &map,
            4,
            4,
            None,
            &HeatmapStyle {
                center: [-3.0, 0.25],
                ..style
            },
        );
        assert_eq!(far, img);
    }
}
