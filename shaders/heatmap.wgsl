// Attribution heatmap: one map value per output pixel (nearest texel), coloured through a
// 256-entry LUT and blended over a grey photo. `src/render/heatmap.rs::colorize` is the CPU
// reference of exactly this arithmetic; `tests/render_parity.rs` checks they agree to 1/255.
// Values are handled in 0..255 units, as the CPU exporter does, so the two round alike.

struct Params {
    // The panel's rectangle in framebuffer pixels, not clamped to the screen (egui clamps
    // the viewport it sets, which would squash a panel that is partly scrolled away).
    origin: vec2<f32>,
    size: vec2<f32>,
    // View centre in [0, 1] map coordinates, already clamped so the view stays on the map.
    center: vec2<f32>,
    zoom: f32,
    // Value that maps to the end of the scale (> 0).
    range: f32,
    // 0 = the colormap alone (white where there is no value), 1 = blended over the photo.
    overlay: f32,
    diverging: u32,
    _pad: vec2<u32>,
};

@group(0) @binding(0) var<uniform> params: Params;
// R32Float is not filterable: everything is read with textureLoad, no sampler.
@group(0) @binding(1) var map_tex: texture_2d<f32>;
@group(0) @binding(2) var photo_tex: texture_2d<f32>;
@group(1) @binding(0) var lut_tex: texture_2d<f32>;

// One triangle, (-1,-1) (3,-1) (-1,3), covers the whole viewport without a vertex buffer.
@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let x = f32(i32(i & 1u) * 4 - 1);
    let y = f32(i32(i >> 1u) * 4 - 1);
    return vec4<f32>(x, y, 0.0, 1.0);
}

// Nearest texel of map coordinate `m` in a texture of `size` texels.
fn texel(m: vec2<f32>, size: vec2<u32>) -> vec2<i32> {
    let s = vec2<i32>(size);
    return clamp(vec2<i32>(floor(m * vec2<f32>(size))), vec2<i32>(0), s - vec2<i32>(1));
}

// An Rgba8Unorm texel back in exact 0..255 integers.
fn load255(t: texture_2d<f32>, at: vec2<i32>) -> vec3<f32> {
    return floor(textureLoad(t, at, 0).rgb * 255.0 + 0.5);
}

@fragment
fn fs_main(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    // frag.xy is the pixel centre (x + 0.5, y + 0.5) in framebuffer pixels.
    let uv = (frag.xy - params.origin) / params.size;
    let m = params.center + (uv - 0.5) / params.zoom;
    let v = textureLoad(map_tex, texel(m, textureDimensions(map_tex)), 0).r;
    let rgb = load255(photo_tex, texel(m, textureDimensions(photo_tex)));
    let grey = 0.299 * rgb.r + 0.587 * rgb.g + 0.114 * rgb.b;

    // NaN means "no value": white alone, the bare photo when overlaid. WGSL has no isNan and
    // `v != v` may be folded away, so the bits are tested.
    var map_only = vec3<f32>(255.0);
    var overlaid = vec3<f32>(grey);
    if ((bitcast<u32>(v) & 0x7fffffffu) <= 0x7f800000u) {
        // clamp(v / range, -1, 1), without relying on infinities in the division.
        var t = v / params.range;
        if (abs(v) >= params.range) {
            t = sign(v);
        }
        let s = select(max(t, 0.0), 0.5 + 0.5 * t, params.diverging != 0u);
        // Nearest LUT entry, rounding halves up like Rust's f32::round (WGSL's round() is
        // half-to-even).
        let c = load255(lut_tex, vec2<i32>(i32(floor(s * 255.0 + 0.5)), 0));
        let a = 0.15 + 0.8 * sqrt(abs(t));
        map_only = c;
        overlaid = (1.0 - a) * grey + a * c;
    }
    let out = (1.0 - params.overlay) * map_only + params.overlay * overlaid;
    // Opaque, so premultiplied and straight colour are the same; gamma-space values go
    // straight into the non-sRGB target.
    return vec4<f32>(clamp(floor(out + 0.5), vec3<f32>(0.0), vec3<f32>(255.0)) / 255.0, 1.0);
}
