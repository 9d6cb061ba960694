//! ROAR's machinery on data whose answer is known: the label lives in a 4×4 block of
//! pixels (each a noisy vote for the class), the rest is noise. Removing pixels by the
//! oracle ranking (the block first) must drop accuracy fastest, the inverted ranking (the
//! block last) slowest, and a random ranking in between; and the digits run is the same
//! for the same seed.

use pathscope::metrics::imputation::Imputation;
use pathscope::roar::dataset::{digits, Dataset};
use pathscope::roar::estimator::{rankings, Estimator, MapSettings};
use pathscope::roar::network::{SmallCnn, TrainConfig};
use pathscope::roar::removal::{apply, Mode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

const SIDE: usize = 8;

fn is_key(p: usize) -> bool {
    let (y, x) = (p / SIDE, p % SIDE);
    (2..6).contains(&y) && (2..6).contains(&x)
}

/// Two classes; a key pixel is 0.5 ± 0.1 (by class) plus N(0, 0.2) noise, clamped; every
/// other pixel is uniform. One key pixel alone is a weak vote; sixteen are a strong one.
fn synthetic(count: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0f32, 0.2).unwrap();
    let mut images = Vec::with_capacity(count * SIDE * SIDE);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let label = i % 2;
        let shift = if label == 1 { 0.1 } else { -0.1 };
        for p in 0..SIDE * SIDE {
            let v = if is_key(p) {
                0.5 + shift + noise.sample(&mut rng)
            } else {
                rng.random::<f32>()
            };
            images.push(v.clamp(0.0, 1.0));
        }
        labels.push(label);
    }
    Dataset {
        channels: 1,
        height: SIDE,
        width: SIDE,
        images,
        labels,
        classes: vec!["low".into(), "high".into()],
    }
}

/// Every image ranked the same way: the key block first (`oracle`), last (`inverted`), or
/// a fresh random order per image.
fn ranking(kind: &str, images: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keys: Vec<u32> = (0..SIDE * SIDE).filter(|&p| is_key(p)).map(|p| p as u32).collect();
    let rest: Vec<u32> = (0..SIDE * SIDE).filter(|&p| !is_key(p)).map(|p| p as u32).collect();
    (0..images)
        .map(|_| match kind {
            "oracle" => [keys.clone(), rest.clone()].concat(),
            "inverted" => [rest.clone(), keys.clone()].concat(),
            _ => {
                let mut all: Vec<u32> = (0..(SIDE * SIDE) as u32).collect();
                rand::seq::SliceRandom::shuffle(&mut all[..], &mut rng);
                all
            }
        })
        .collect()
}

#[test]
fn the_oracle_ranking_drops_accuracy_fastest_and_the_inverted_slowest() {
    let (train, test) = (synthetic(2000, 1), synthetic(600, 2));
    let fill = train.channel_means();
    let config = TrainConfig::default();
    let accuracy = |kind: &str, fraction: f64| {
        let removed = |data: &Dataset, seed| {
            let ranks = ranking(kind, data.len(), seed);
            apply(data, &ranks, fraction, Mode::Remove, Imputation::Mean, &fill, seed).unwrap()
        };
        let net = SmallCnn::train(&removed(&train, 10), &config, 7).unwrap();
        net.accuracy(&removed(&test, 20)).unwrap()
    };
    let untouched = SmallCnn::train(&train, &config, 7).unwrap().accuracy(&test).unwrap();
    assert!(untouched > 0.9, "the block alone should tell the class: {untouched}");
    for fraction in [0.5, 0.75] {
        let (oracle, random, inverted) = (
            accuracy("oracle", fraction),
            accuracy("random", fraction),
            accuracy("inverted", fraction),
        );
        eprintln!(
            "{fraction}: oracle {oracle:.3} random {random:.3} inverted {inverted:.3} (untouched {untouched:.3})"
        );
        // With the whole block gone nothing is left to learn: chance, within 4 standard errors.
        assert!((oracle - 0.5).abs() < 0.09, "oracle at {fraction}: {oracle}");
        assert!(
            oracle + 0.1 < random,
            "oracle {oracle} vs random {random} at {fraction}"
        );
        assert!(
            random + 0.02 < inverted,
            "random {random} vs inverted {inverted} at {fraction}"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_maps_and_networks() {
    let split = digits(0.2, 0).unwrap();
    let small = split.test.subset(&(0..40).collect::<Vec<_>>());
    let config = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let net = SmallCnn::train(&split.train, &config, 5).unwrap();
    let estimators: Vec<Estimator> = ["ig", "smoothgrad", "vargrad", "random", "ig:blur"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let settings = MapSettings {
        steps: 8,
        samples: 4,
        seed: 3,
    };
    let a = rankings(&estimators, Some(&net), &small, &settings, 100, &|| {}).unwrap();
    let b = rankings(&estimators, Some(&net), &small, &settings, 100, &|| {}).unwrap();
    assert_eq!(a, b);
    assert_ne!(a[1], a[2], "SmoothGrad and VarGrad rank differently");
    let again = SmallCnn::train(&split.train, &config, 5).unwrap();
    assert_eq!(net.accuracy(&split.test).unwrap(), again.accuracy(&split.test).unwrap());
}

#[test]
fn a_class_folder_dataset_loads_with_its_labels_split_and_colour() {
    use pathscope::roar::dataset::image_folder;
    let root = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("roar_folder");
    let _ = std::fs::remove_dir_all(&root);
    // Flat layout: two classes of grey images, one with a constant value per class.
    for (class, value) in [("cats", 40u8), ("dogs", 200u8)] {
        std::fs::create_dir_all(root.join("flat").join(class)).unwrap();
        for i in 0..5 {
            image::GrayImage::from_pixel(12, 10, image::Luma([value]))
                .save(root.join("flat").join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let split = image_folder(&root.join("flat"), 8, 0.2, 0).unwrap();
    assert_eq!(split.train.classes, ["cats", "dogs"]);
    assert_eq!((split.train.len(), split.test.len()), (8, 2));
    assert_eq!((split.train.channels, split.train.height, split.train.width), (1, 8, 8));
    for (i, &label) in split.train.labels.iter().enumerate() {
        let expected = if label == 0 { 40.0 } else { 200.0 } / 255.0;
        assert!(split.train.image(i).iter().all(|&v| (v - expected).abs() < 1e-6));
    }
    // Split on disk (train/ and val/), RGB.
    for part in ["train", "val"] {
        for class in ["a", "b"] {
            let dir = root.join("split").join(part).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            image::RgbImage::from_pixel(4, 4, image::Rgb([255, 0, 0]))
                .save(dir.join("x.png"))
                .unwrap();
        }
    }
    let split = image_folder(&root.join("split"), 4, 0.2, 0).unwrap();
    assert_eq!((split.train.len(), split.test.len(), split.train.channels), (2, 2, 3));
    assert_eq!(&split.test.image(0)[..16], &[1.0; 16]);
    // One class is not a classification.
    std::fs::create_dir_all(root.join("one/only")).unwrap();
    assert!(image_folder(&root.join("one"), 8, 0.2, 0).is_err());
}
