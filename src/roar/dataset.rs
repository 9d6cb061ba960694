//! Labelled images for ROAR: the 8×8 handwritten digits that ship with Pathscope (UCI
//! "Optical Recognition of Handwritten Digits", the 1,797-image copy scikit-learn ships;
//! CC BY 4.0, see `assets/digits/LICENCE.md`) and any folder of class subfolders
//! (torchvision's ImageFolder layout), split into train and test sets.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Result, RoarError};

/// The digits as scikit-learn ships them: gzip'd CSV, 64 pixels in 0..=16 then the label.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../assets/digits/digits.csv.gz");
const DIGITS_NAME: &str = "digits (UCI, 8×8)";

/// Images (planar C × H × W, pixel values in [0, 1]) with their class indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    pub classes: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values of one image (C × H × W).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn image(&self, index: usize) -> &[f32] {
        let n = self.image_len();
        &self.images[index * n..(index + 1) * n]
    }

    /// The mean of each channel over every pixel of every image (f64 sums): ROAR's fill.
    pub fn channel_means(&self) -> Vec<f32> {
        let plane = self.height * self.width;
        let mut sums = vec![0f64; self.channels];
        for image in self.images.chunks(self.image_len().max(1)) {
            for (c, values) in image.chunks(plane.max(1)).enumerate() {
                sums[c] += values.iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        let count = (self.len() * plane).max(1) as f64;
        sums.into_iter().map(|s| (s / count) as f32).collect()
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            ..*self
        }
    }

    /// The same labels and shape with other pixel values (e.g. with pixels removed).
    pub fn with_images(&self, images: Vec<f32>) -> Dataset {
        debug_assert_eq!(images.len(), self.images.len());
        Dataset {
            images,
            labels: self.labels.clone(),
            classes: self.classes.clone(),
            ..*self
        }
    }
}

impl Default for Dataset {
    fn default() -> Self {
        Dataset {
            channels: 1,
            height: 0,
            width: 0,
            images: Vec::new(),
            labels: Vec::new(),
            classes: Vec::new(),
        }
    }
}

/// A dataset divided into the images a network trains on and those it is tested on.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Where it came from, as results files name it (`digits` or the folder).
    pub name: String,
    pub train: Dataset,
    pub test: Dataset,
}

/// The shipped digits, split per class: `test_fraction` of each class (seeded) is held out.
pub fn digits(test_fraction: f64, seed: u64) -> Result<Split> {
    let all = digits_dataset()?;
    let (train, test) = stratified_split(&all.labels, all.classes.len(), test_fraction, seed)?;
    Ok(Split {
        name: "digits".into(),
        train: all.subset(&train),
        test: all.subset(&test),
    })
}

/// All 1,797 digits, in the file's order.
pub fn digits_dataset() -> Result<Dataset> {
    let bad = |message: String| RoarError::Dataset {
        path: PathBuf::from(DIGITS_NAME),
        message,
    };
    let csv = gunzip(DIGITS_CSV_GZ).map_err(bad)?;
    let text = std::str::from_utf8(&csv).map_err(|e| bad(format!("not text: {e}")))?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (line_number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let values: Vec<u32> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>().map(|x| x as u32))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(format!("line {}: {e}", line_number + 1)))?;
        if values.len() != 65 || values[64] > 9 || values[..64].iter().any(|&v| v > 16) {
            return Err(bad(format!(
                "line {}: expected 64 pixels in 0..=16 and a digit",
                line_number + 1
            )));
        }
        images.extend(values[..64].iter().map(|&v| v as f32 / 16.0));
        labels.push(values[64] as usize);
    }
    Ok(Dataset {
        channels: 1,
        height: 8,
        width: 8,
        images,
        labels,
        classes: (0..10).map(|d| d.to_string()).collect(),
    })
}

/// The payload of a one-member gzip file (RFC 1952), its length checked.
fn gunzip(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    const FHCRC: u8 = 2;
    if bytes.len() < 18 || bytes[0] != 0x1f || bytes[1] != 0x8b || bytes[2] != 8 {
        return Err("not a gzip file".into());
    }
    let flags = bytes[3];
    let mut at = 10;
    let skip_zero_terminated = |at: usize| {
        bytes[at..]
            .iter()
            .position(|&b| b == 0)
            .map(|p| at + p + 1)
            .ok_or("truncated gzip header")
    };
    if flags & FEXTRA != 0 {
        let len = u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
        at += 2 + len;
    }
    if flags & FNAME != 0 {
        at = skip_zero_terminated(at)?;
    }
    if flags & FCOMMENT != 0 {
        at = skip_zero_terminated(at)?;
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    let end = bytes.len() - 8;
    if at > end {
        return Err("truncated gzip header".into());
    }
    let data = miniz_oxide::inflate::decompress_to_vec_with_limit(&bytes[at..end], 64 << 20)
        .map_err(|e| format!("corrupt gzip data: {e:?}"))?;
    let size = u32::from_le_bytes([bytes[end + 4], bytes[end + 5], bytes[end + 6], bytes[end + 7]]);
    if data.len() as u32 != size {
        return Err(format!(
            "gzip length {} differs from the {size} bytes it declares",
            data.len()
        ));
    }
    Ok(data)
}

/// Indices of the train and test sets: per class, a seeded shuffle, the first
/// round(`test_fraction` × count) (at least one where a class has two images) held out.
pub fn stratified_split(
    labels: &[usize],
    classes: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(RoarError::InvalidArgument(format!(
            "the test fraction must be between 0 and 1 (e.g. 0.2), got {test_fraction}"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut rng);
        let held = ((members.len() as f64 * test_fraction).round() as usize)
            .max(usize::from(members.len() >= 2))
            .min(members.len().saturating_sub(1));
        test.extend_from_slice(&members[..held]);
        train.extend_from_slice(&members[held..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"];

/// A folder of class subfolders (`DIR/CLASS/*.png`), or with the split made already
/// (`DIR/train/CLASS/…` and `DIR/test/CLASS/…` or `DIR/val/CLASS/…`, as Imagenette ships).
/// Every image is resized to `size` × `size` (bilinear); grey when every image is grey,
/// RGB otherwise. Without a split on disk, `test_fraction` of each class is held out.
pub fn image_folder(dir: &Path, size: usize, test_fraction: f64, seed: u64) -> Result<Split> {
    let bad = |message: String| RoarError::Dataset {
        path: dir.to_path_buf(),
        message,
    };
    if !dir.is_dir() {
        return Err(bad("not a folder".into()));
    }
    if !(4..=512).contains(&size) {
        return Err(RoarError::InvalidArgument(format!(
            "the image size must be between 4 and 512 pixels, got {size}"
        )));
    }
    let name = dir.display().to_string();
    let test_dir = ["test", "val"].into_iter().map(|d| dir.join(d)).find(|d| d.is_dir());
    if let (true, Some(test_dir)) = (dir.join("train").is_dir(), test_dir) {
        let classes = class_names(&dir.join("train"))?;
        let train = read_classes(&dir.join("train"), &classes)?;
        let test = read_classes(&test_dir, &classes)?;
        let grey = train
            .iter()
            .chain(&test)
            .all(|(_, img)| img.color().channel_count() <= 2);
        return Ok(Split {
            name,
            train: to_dataset(train, &classes, size, grey),
            test: to_dataset(test, &classes, size, grey),
        });
    }
    let classes = class_names(dir)?;
    let all = read_classes(dir, &classes)?;
    let grey = all.iter().all(|(_, img)| img.color().channel_count() <= 2);
    let dataset = to_dataset(all, &classes, size, grey);
    let (train, test) = stratified_split(&dataset.labels, classes.len(), test_fraction, seed)?;
    Ok(Split {
        name,
        train: dataset.subset(&train),
        test: dataset.subset(&test),
    })
}

fn class_names(dir: &Path) -> Result<Vec<String>> {
    let io = |source| RoarError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.len() < 2 {
        return Err(RoarError::Dataset {
            path: dir.to_path_buf(),
            message: format!("expected a subfolder per class (at least two), found {}", names.len()),
        });
    }
    Ok(names)
}

fn read_classes(dir: &Path, classes: &[String]) -> Result<Vec<(usize, image::DynamicImage)>> {
    let mut out = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let folder = dir.join(class);
        let io = |source| RoarError::Io {
            path: folder.clone(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(RoarError::Dataset {
                path: folder.clone(),
                message: "no images (png, jpg, bmp, tif, webp) in this class folder".into(),
            });
        }
        for file in files {
            let img = image::open(&file).map_err(|e| RoarError::Dataset {
                path: file.clone(),
                message: format!("cannot read the image: {e}"),
            })?;
            out.push((label, img));
        }
    }
    Ok(out)
}

fn to_dataset(images: Vec<(usize, image::DynamicImage)>, classes: &[String], size: usize, grey: bool) -> Dataset {
    let channels = if grey { 1 } else { 3 };
    let mut values = Vec::with_capacity(images.len() * channels * size * size);
    let mut labels = Vec::with_capacity(images.len());
    for (label, img) in images {
        let resized = img.resize_exact(size as u32, size as u32, image::imageops::FilterType::Triangle);
        if grey {
            values.extend(resized.to_luma8().pixels().map(|p| p.0[0] as f32 / 255.0));
        } else {
            let rgb = resized.to_rgb8();
            for c in 0..3 {
                values.extend(rgb.pixels().map(|p| p.0[c] as f32 / 255.0));
            }
        }
        labels.push(label);
    }
    Dataset {
        channels,
        height: size,
        width: size,
        images: values,
        labels,
        classes: classes.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digits_are_the_uci_copy() {
        let d = digits_dataset().unwrap();
        assert_eq!(d.len(), 1797);
        assert_eq!((d.channels, d.height, d.width), (1, 8, 8));
        // The first digit of scikit-learn's copy is a 0 whose third pixel is 5/16.
        assert_eq!(d.labels[0], 0);
        assert_eq!(d.image(0)[2], 5.0 / 16.0);
        let per_class: Vec<usize> = (0..10).map(|c| d.labels.iter().filter(|&&l| l == c).count()).collect();
        assert_eq!(per_class, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    }

    #[test]
    fn the_split_is_per_class_seeded_and_disjoint() {
        let s = digits(0.2, 7).unwrap();
        assert_eq!(s.train.len() + s.test.len(), 1797);
        assert_eq!(s.test.len(), 359);
        assert_eq!(s, digits(0.2, 7).unwrap());
        assert_ne!(s.test.labels, digits(0.2, 8).unwrap().test.labels);
        assert!(digits(1.0, 0).is_err());
    }
}
