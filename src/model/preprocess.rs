//! Image decoding and torchvision's evaluation preprocessing: `Resize` (PIL bilinear or
//! bicubic, antialiased), `CenterCrop`, `ToTensor`, `Normalize`, for any crop size and
//! RGB, BGR or single-channel (grey) models. [`Preprocessing::IMAGENET`] is torchvision's
//! ImageNet evaluation: Resize(256), CenterCrop(224), ImageNet statistics.
//!
//! The resize is a port of Pillow's two-pass fixed-point resampler (`Resample.c`:
//! horizontal pass, then vertical, 22-bit coefficients, rounding to u8 after each pass),
//! so the crop matches torchvision's bytes exactly rather than approximately.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::RgbImage;

/// Shorter side after `Resize`, and the square crop, of torchvision's ImageNet evaluation.
pub const RESIZE_SHORTER: u32 = 256;
pub const CROP: u32 = 224;

/// Largest width or height accepted from a file, and the decoder's memory ceiling: an
/// image bigger than this is almost certainly a mistake, and decoding it could exhaust
/// memory before anything useful happens.
pub const MAX_IMAGE_SIDE: u32 = 20_000;
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a supported image ({message})", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("{}: image is {width}×{height}; the smallest accepted side is 1 pixel", path.display())]
    Empty { path: PathBuf, width: u32, height: u32 },
}

/// The channels a model reads, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
    /// One channel: Pillow's `convert("L")` luminance.
    Grey,
}

impl ChannelOrder {
    pub const ALL: [ChannelOrder; 3] = [ChannelOrder::Rgb, ChannelOrder::Bgr, ChannelOrder::Grey];

    pub fn name(self) -> &'static str {
        match self {
            ChannelOrder::Rgb => "rgb",
            ChannelOrder::Bgr => "bgr",
            ChannelOrder::Grey => "grey",
        }
    }

    pub fn count(self) -> usize {
        match self {
            ChannelOrder::Grey => 1,
            _ => 3,
        }
    }

    /// The RGB channel model channel `c` reads.
    fn rgb_index(self, c: usize) -> usize {
        match self {
            ChannelOrder::Rgb => c,
            ChannelOrder::Bgr => 2 - c,
            ChannelOrder::Grey => 0,
        }
    }
}

text_form!(ChannelOrder, "channel order");

/// Per-channel normalisation `(x − mean) / std` of pixels scaled to [0, 1], indexed by
/// the model's channels (`channels` says which colour each is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub channels: ChannelOrder,
}

impl Normalization {
    /// torchvision's ImageNet statistics.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        channels: ChannelOrder::Rgb,
    };
    /// TensorFlow Lite models: (x·255 − 127) / 128.
    pub const TF_LITE: Normalization = Normalization {
        mean: [127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0],
        std: [128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0],
        channels: ChannelOrder::Rgb,
    };

    /// An RGB image to a normalised [1, C, H, W] tensor (C = 1 for grey models), in the
    /// same f32 operations as torchvision (`/255`, then `(x − mean)/std`).
    pub fn image_to_tensor(&self, img: &RgbImage, device: &Device) -> candle_core::Result<Tensor> {
        let (w, h) = img.dimensions();
        let (w, h) = (w as usize, h as usize);
        let channels = self.channels.count();
        let mut data = vec![0f32; channels * h * w];
        for (i, p) in img.pixels().enumerate() {
            for c in 0..channels {
                let v = match self.channels {
                    ChannelOrder::Grey => luminance(p.0) as f32 / 255.0,
                    order => p.0[order.rgb_index(c)] as f32 / 255.0,
                };
                data[c * h * w + i] = (v - self.mean[c]) / self.std[c];
            }
        }
        Tensor::from_vec(data, (1, channels, h, w), device)
    }

    /// Pixel planes in [0, 1] of the model's channels (CHW, flat) as interleaved 8-bit
    /// RGB for display: grey repeated, BGR swapped back.
    pub fn pixels_to_rgb8(&self, pixels: &[f32], hw: usize) -> Vec<u8> {
        let planes = (pixels.len() / hw.max(1)).max(1);
        let plane_of = |rgb: usize| match self.channels {
            ChannelOrder::Rgb => rgb,
            ChannelOrder::Bgr => 2 - rgb,
            ChannelOrder::Grey => 0,
        };
        (0..hw)
            .flat_map(|i| (0..3).map(move |rgb| (rgb, i)))
            .map(|(rgb, i)| {
                let v = pixels
                    .get(plane_of(rgb).min(planes - 1) * hw + i)
                    .copied()
                    .unwrap_or(0.0);
                (v.clamp(0.0, 1.0) * 255.0).round() as u8
            })
            .collect()
    }

    /// Pixel values in [0, 1] (CHW, flat) to normalised values.
    pub fn normalize_pixels(&self, pixels: &mut [f32], hw: usize) {
        for (c, chunk) in pixels.chunks_mut(hw).enumerate().take(3) {
            for v in chunk {
                *v = (*v - self.mean[c]) / self.std[c];
            }
        }
    }

    /// Normalised values (CHW, flat) back to pixels in [0, 1] (not clamped).
    pub fn denormalize(&self, values: &mut [f32], hw: usize) {
        for (c, chunk) in values.chunks_mut(hw).enumerate().take(3) {
            for v in chunk {
                *v = *v * self.std[c] + self.mean[c];
            }
        }
    }
}

/// Decodes an image file of any supported type to 8-bit RGB (alpha dropped, grey
/// replicated, 16-bit scaled), with limits on size and decoder memory.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_rgb(path, &bytes)
}

/// As [`load_rgb`], from bytes already in memory; `path` only names the source in errors.
pub fn decode_rgb(path: &Path, bytes: &[u8]) -> Result<RgbImage, ImageError> {
    let decode_err = |message: String| ImageError::Decode {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(decode_err("unrecognised file format".into()));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| decode_err(e.to_string()))?;
    // Cameras store portrait photos sideways with an EXIF orientation tag; viewers rotate
    // them, and so must we, or the researcher explains a different image from the one
    // they see. An unreadable tag is no reason to refuse the pixels.
    let orientation =
        image::ImageDecoder::orientation(&mut decoder).unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| decode_err(e.to_string()))?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err(ImageError::Empty {
            path: path.to_path_buf(),
            width: img.width(),
            height: img.height(),
        });
    }
    Ok(img.to_rgb8())
}

/// torchvision's output size for `Resize(size)` with an int: the shorter side becomes
/// `size`, the longer keeps the aspect ratio, truncated.
pub fn resized_dimensions(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = ((size as u64 * long as u64) as f64 / short as f64) as u32;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's luminance (`convert("L")`, ITU-R 601-2 in 16-bit fixed point).
pub fn luminance(rgb: [u8; 3]) -> u8 {
    ((rgb[0] as u32 * 19595 + rgb[1] as u32 * 38470 + rgb[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// The resampling filter of a resize, as Pillow (and so torchvision on PIL images)
/// implements it, antialiased when shrinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    Bilinear,
    Bicubic,
}

impl Interpolation {
    pub const ALL: [Interpolation; 2] = [Interpolation::Bilinear, Interpolation::Bicubic];

    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
        }
    }

    fn support(self) -> f64 {
        match self {
            Interpolation::Bilinear => 1.0,
            Interpolation::Bicubic => 2.0,
        }
    }

    /// Pillow's `bilinear_filter` and `bicubic_filter` (a = −0.5).
    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Interpolation::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Interpolation::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

text_form!(Interpolation, "interpolation");

/// Pillow's `precompute_coeffs`, already converted to fixed point: per output index,
/// (first input index, weights).
fn coefficients(in_size: usize, out_size: usize, filter: Interpolation) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let mut out = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut k: Vec<f64> = (0..n)
            .map(|x| filter.weight(((x + xmin) as f64 - center + 0.5) * ss))
            .collect();
        let ww: f64 = k.iter().sum();
        if ww != 0.0 {
            for v in &mut k {
                *v /= ww;
            }
        }
        let fixed = k
            .iter()
            .map(|&v| {
                let s = v * (1u64 << PRECISION_BITS) as f64;
                if v < 0.0 {
                    (-0.5 + s) as i32
                } else {
                    (0.5 + s) as i32
                }
            })
            .collect();
        out.push((xmin, fixed));
    }
    out
}

#[inline]
fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize(..., BILINEAR)` (with its antialiasing support scaling).
pub fn resize_bilinear_pil(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    resize_pil(img, out_w, out_h, Interpolation::Bilinear)
}

/// Pillow's `Image.resize` with the bilinear or bicubic filter.
pub fn resize_pil(img: &RgbImage, out_w: u32, out_h: u32, filter: Interpolation) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    let (in_w, in_h, out_w, out_h) = (in_w as usize, in_h as usize, out_w as usize, out_h as usize);
    let src = img.as_raw();
    let horiz = coefficients(in_w, out_w, filter);
    let vert = coefficients(in_h, out_h, filter);
    let half = 1i64 << (PRECISION_BITS - 1);

    // Horizontal pass over the rows the vertical pass will read.
    let (rows, row_first): (Vec<u8>, usize) = if out_w != in_w {
        let first = vert.first().map(|v| v.0).unwrap_or(0);
        let last = vert.last().map(|(m, k)| m + k.len()).unwrap_or(in_h);
        let mut tmp = vec![0u8; (last - first) * out_w * 3];
        for y in first..last {
            let row = &src[y * in_w * 3..(y + 1) * in_w * 3];
            for (xx, (xmin, k)) in horiz.iter().enumerate() {
                for c in 0..3 {
                    let mut ss = half;
                    for (x, &w) in k.iter().enumerate() {
                        ss += row[(xmin + x) * 3 + c] as i64 * w as i64;
                    }
                    tmp[((y - first) * out_w + xx) * 3 + c] = clip8(ss);
                }
            }
        }
        (tmp, first)
    } else {
        (src.to_vec(), 0)
    };
    if out_h == in_h {
        return RgbImage::from_raw(out_w as u32, out_h as u32, rows).expect("buffer sized for the image");
    }
    let mut out = vec![0u8; out_h * out_w * 3];
    for (yy, (ymin, k)) in vert.iter().enumerate() {
        let ymin = ymin - row_first;
        for xx in 0..out_w {
            for c in 0..3 {
                let mut ss = half;
                for (y, &w) in k.iter().enumerate() {
                    ss += rows[((ymin + y) * out_w + xx) * 3 + c] as i64 * w as i64;
                }
                out[(yy * out_w + xx) * 3 + c] = clip8(ss);
            }
        }
    }
    RgbImage::from_raw(out_w as u32, out_h as u32, out).expect("buffer sized for the image")
}

/// Python's `round` (half to even), as torchvision's `center_crop` uses.
fn round_half_even(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// torchvision's `CenterCrop(size)` (padding with black if the image is smaller).
pub fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
    center_crop_to(img, size, size)
}

/// torchvision's `CenterCrop((height, width))`, padding with black (torchvision pads
/// symmetrically, the odd pixel at the end) where the image is smaller.
pub fn center_crop_to(img: &RgbImage, height: u32, width: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w < width || h < height {
        let mut padded = RgbImage::new(w.max(width), h.max(height));
        let (ox, oy) = ((w.max(width) - w) / 2, (h.max(height) - h) / 2);
        image::imageops::overlay(&mut padded, img, ox as i64, oy as i64);
        return center_crop_to(&padded, height, width);
    }
    let top = round_half_even((h - height) as f64 / 2.0) as u32;
    let left = round_half_even((w - width) as f64 / 2.0) as u32;
    image::imageops::crop_imm(img, left, top, width, height).to_image()
}

/// The resize before the crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// The shorter side becomes this many pixels, the aspect ratio kept (`Resize(int)`).
    Shorter(u32),
    /// Exactly this height × width (`Resize((h, w))`).
    Exact { height: u32, width: u32 },
    /// No resize: the crop is cut from the image as it is.
    None,
}

impl std::fmt::Display for Resize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resize::Shorter(n) => write!(f, "{n}"),
            Resize::Exact { height, width } => write!(f, "{height}x{width}"),
            Resize::None => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for Resize {
    type Err = String;
    /// `256` (shorter side), `299x299` (exact height × width) or `none`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Resize::None);
        }
        match parse_size(s)? {
            (n, None) => Ok(Resize::Shorter(n)),
            (height, Some(width)) => Ok(Resize::Exact { height, width }),
        }
    }
}

/// `N` or `HxW`, each 1..=8192.
pub fn parse_size(s: &str) -> Result<(u32, Option<u32>), String> {
    let side = |t: &str| -> Result<u32, String> {
        match t.trim().parse::<u32>() {
            Ok(n) if (1..=8192).contains(&n) => Ok(n),
            _ => Err(format!(
                "`{s}` is not a size: expected N or HxW with sides from 1 to 8192"
            )),
        }
    };
    match s.split_once(['x', '×']) {
        Some((h, w)) => Ok((side(h)?, Some(side(w)?))),
        None => Ok((side(s)?, None)),
    }
}

/// Everything between an image file's pixels and the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    pub resize: Resize,
    pub interpolation: Interpolation,
    /// The centre crop, height × width: the model's input size.
    pub crop: (u32, u32),
    pub normalization: Normalization,
}

impl Preprocessing {
    /// torchvision's ImageNet evaluation: Resize(256) bilinear, CenterCrop(224).
    pub const IMAGENET: Preprocessing = Preprocessing {
        resize: Resize::Shorter(RESIZE_SHORTER),
        interpolation: Interpolation::Bilinear,
        crop: (CROP, CROP),
        normalization: Normalization::IMAGENET,
    };

    /// torchvision's convention for another input size: resize the shorter side to
    /// 256/224 of the crop's shorter side (342 for 299, as Inception-v3's weights use).
    pub fn for_input(height: u32, width: u32, normalization: Normalization) -> Self {
        let shorter = height.min(width) as f64;
        Preprocessing {
            resize: Resize::Shorter((shorter * 256.0 / 224.0).round() as u32),
            crop: (height, width),
            normalization,
            ..Self::IMAGENET
        }
    }

    /// The crop the model sees, as RGB (a grey model's luminance in all three channels),
    /// before normalisation.
    pub fn apply(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let (nw, nh) = match self.resize {
            Resize::Shorter(n) => resized_dimensions(w, h, n),
            Resize::Exact { height, width } => (width, height),
            Resize::None => (w, h),
        };
        let resized = if (nw, nh) == (w, h) {
            img.clone()
        } else {
            resize_pil(img, nw.max(1), nh.max(1), self.interpolation)
        };
        let mut crop = center_crop_to(&resized, self.crop.0, self.crop.1);
        if self.normalization.channels == ChannelOrder::Grey {
            for p in crop.pixels_mut() {
                let l = luminance(p.0);
                p.0 = [l, l, l];
            }
        }
        crop
    }

    /// An image to the model's normalised [1, C, H, W] input.
    pub fn image_to_tensor(&self, img: &RgbImage, device: &Device) -> candle_core::Result<Tensor> {
        self.normalization.image_to_tensor(&self.apply(img), device)
    }

    /// One line for people: "resize 256 bilinear, crop 224×224, mean 0.485 0.456 0.406,
    /// std 0.229 0.224 0.225, rgb".
    pub fn describe(&self) -> String {
        let n = &self.normalization;
        let k = n.channels.count();
        let list = |v: &[f32; 3]| v[..k].iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(" ");
        let resize = match self.resize {
            Resize::None => "no resize".to_string(),
            Resize::Shorter(s) => format!("resize {s} {}", self.interpolation),
            Resize::Exact { height, width } => format!("resize {height}×{width} {}", self.interpolation),
        };
        format!(
            "{resize}, crop {}×{}, mean {}, std {}, {}",
            self.crop.0,
            self.crop.1,
            list(&n.mean),
            list(&n.std),
            n.channels
        )
    }
}

/// Resize(256) + CenterCrop(224): the RGB crop an ImageNet model sees, before normalisation.
pub fn resize_and_crop(img: &RgbImage) -> RgbImage {
    Preprocessing::IMAGENET.apply(img)
}

/// Image files in `dir` (by extension), sorted by name so that a seed always draws the
/// same references.
pub fn image_files_in(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ImageError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .map(|e| {
                        matches!(
                            e.to_ascii_lowercase().as_str(),
                            "png" | "jpg" | "jpeg" | "tif" | "tiff" | "webp" | "bmp"
                        )
                    })
                    .unwrap_or(false)
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16×8 JPEG, left half red and right half blue, with an EXIF APP1 segment whose
    /// orientation tag is `orientation` (6 = rotate 90° clockwise to display).
    fn jpeg_with_orientation(orientation: u16) -> Vec<u8> {
        let img = RgbImage::from_fn(16, 8, |x, _| {
            if x < 8 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
            .encode_image(&img)
            .unwrap();
        // TIFF header (big-endian), one IFD with one SHORT entry: 0x0112 = orientation.
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        exif.extend_from_slice(&orientation.to_be_bytes());
        exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&exif);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        let upright = decode_rgb(Path::new("plain.jpg"), &jpeg_with_orientation(1)).unwrap();
        assert_eq!(upright.dimensions(), (16, 8));
        let rotated = decode_rgb(Path::new("portrait.jpg"), &jpeg_with_orientation(6)).unwrap();
        // Rotated 90° clockwise: the left (red) half becomes the top.
        assert_eq!(rotated.dimensions(), (8, 16));
        let top = rotated.get_pixel(4, 3).0;
        let bottom = rotated.get_pixel(4, 12).0;
        assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
    }

    #[test]
    fn every_png_colour_type_becomes_rgb() {
        use image::{DynamicImage, ImageFormat};
        let grey = image::GrayImage::from_pixel(5, 4, image::Luma([77]));
        let cases = [
            DynamicImage::ImageLuma8(grey.clone()),
            DynamicImage::ImageLumaA8(DynamicImage::ImageLuma8(grey.clone()).to_luma_alpha8()),
            DynamicImage::ImageRgba8(DynamicImage::ImageLuma8(grey.clone()).to_rgba8()),
            DynamicImage::ImageRgb16(DynamicImage::ImageLuma8(grey.clone()).to_rgb16()),
            DynamicImage::ImageLuma16(DynamicImage::ImageLuma8(grey).to_luma16()),
        ];
        for img in cases {
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
                .unwrap();
            let rgb = decode_rgb(Path::new("x.png"), &png).unwrap();
            assert_eq!(rgb.dimensions(), (5, 4), "{:?}", img.color());
            assert!(rgb.pixels().all(|p| p.0 == [77, 77, 77]), "{:?}", img.color());
        }
    }

    #[test]
    fn resized_dimensions_match_torchvision() {
        // chelsea_cat.png is 451×300: int(256·451/300) = 384.
        assert_eq!(resized_dimensions(451, 300, 256), (384, 256));
        assert_eq!(resized_dimensions(300, 451, 256), (256, 384));
        assert_eq!(resized_dimensions(512, 512, 256), (256, 256));
    }

    #[test]
    fn python_rounding_is_half_to_even() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(80.0), 80);
        assert_eq!(round_half_even(2.4), 2);
    }

    #[test]
    fn resize_of_constant_image_is_constant() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([10, 200, 255]));
        let r = resize_bilinear_pil(&img, 11, 7);
        assert!(r.pixels().all(|p| p.0 == [10, 200, 255]));
    }

    #[test]
    fn downscale_by_two_averages_pairs() {
        // Triangle filter with support 2 at scale 2: weights 1/4, 3/4, 3/4, 1/4 (normalised).
        let mut img = RgbImage::new(4, 1);
        for (i, v) in [0u8, 100, 200, 40].iter().enumerate() {
            img.put_pixel(i as u32, 0, image::Rgb([*v, *v, *v]));
        }
        let r = resize_bilinear_pil(&img, 2, 1);
        // out0: center 1.0, taps x=0..2 weights (0.75, 0.75, 0.25)/1.75 → (0·.75+100·.75+200·.25)/1.75 = 71.4
        assert_eq!(r.get_pixel(0, 0).0[0], 71);
    }
}
