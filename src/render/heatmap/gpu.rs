//! The heatmap pipeline on wgpu: the studio's paint callback and an off-screen renderer.

use std::collections::HashMap;

use eframe::egui;
use eframe::egui_wgpu::{self, wgpu};
use image::{RgbImage, RgbaImage};
use wgpu::util::DeviceExt as _;

use super::{HeatmapStyle, Params};
use crate::render::colormap::Colormap;

const SHADER: &str = include_str!("../../../shaders/heatmap.wgsl");

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
