//! PyTorch `.pth` checkpoints load into the same model as `.safetensors`.
//!
//! There is no PyTorch here, so the `.pth` files are written by the small `torch_save`
//! module below, byte for byte the way `torch.save(state_dict, path)` lays them out.
//! The embedded SqueezeNet-1.1 weights are the source of truth: written to a `.pth`,
//! read back through `Classifier::load` (candle's pickle reader), they must give the
//! same tensors and the same logits as the safetensors they came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use pathscope::assets::DEFAULT_MODEL;
use pathscope::model::{Architecture, Classifier};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Writes PyTorch's zip checkpoint format (`torch.save`, `_use_new_zipfile_serialization`).
///
/// Layout, all entries stored uncompressed under one top folder (torch names it after
/// the file's stem, or `archive` when saving to a buffer; readers must not assume it):
///
/// ```text
/// <top>/data.pkl     pickle (protocol 2) of the saved object; tensors refer to storages
///                    by persistent id ('storage', torch.FloatStorage, '<key>', 'cpu', numel)
/// <top>/byteorder    "little"
/// <top>/data/<key>   raw little-endian bytes of storage <key>
/// <top>/version      "3\n"
/// ```
///
/// The pickle is what CPython's protocol-2 `Pickler` emits for these objects: BINPUT
/// after every memoised object (LONG_BINPUT past 255), BINGET for a global or shared
/// string seen before, BININT1/BININT2/BININT by magnitude, TUPLE1..3 for short tuples,
/// MARK … SETITEMS for dict batches of several items and a lone SETITEM for one. Every
/// opcode used is one candle-core 0.11's `pickle.rs` decodes.
mod torch_save {
    use std::collections::{BTreeMap, HashMap};
    use std::io::Write;
    use std::path::Path;

    use candle_core::{DType, Tensor};
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipWriter};

    // Pickle opcodes (names as in CPython's pickletools).
    const PROTO: u8 = 0x80;
    const STOP: u8 = b'.';
    const GLOBAL: u8 = b'c';
    const BINPUT: u8 = b'q';
    const LONG_BINPUT: u8 = b'r';
    const BINGET: u8 = b'h';
    const LONG_BINGET: u8 = b'j';
    const MARK: u8 = b'(';
    const EMPTY_TUPLE: u8 = b')';
    const TUPLE: u8 = b't';
    const TUPLE1: u8 = 0x85;
    const TUPLE2: u8 = 0x86;
    const TUPLE3: u8 = 0x87;
    const EMPTY_DICT: u8 = b'}';
    const SETITEM: u8 = b's';
    const SETITEMS: u8 = b'u';
    const BINUNICODE: u8 = b'X';
    const BININT: u8 = b'J';
    const BININT1: u8 = b'K';
    const BININT2: u8 = b'M';
    const NEWFALSE: u8 = 0x89;
    const REDUCE: u8 = b'R';
    const BINPERSID: u8 = b'Q';
    const BUILD: u8 = b'b';

    /// What to save: a state dict, or a dict whose one entry `key` holds the state dict
    /// (`torch.save({"state_dict": model.state_dict()}, path)`, as training scripts do).
    pub enum Layout<'a> {
        StateDict,
        Nested { key: &'a str },
    }

    /// A protocol-2 pickler with CPython's memo numbering.
    struct Pickler {
        out: Vec<u8>,
        next_memo: u32,
        /// Globals and interned strings already memoised, so repeats become BINGETs.
        seen: HashMap<String, u32>,
    }

    impl Pickler {
        fn new() -> Self {
            Self {
                out: vec![PROTO, 2],
                next_memo: 0,
                seen: HashMap::new(),
            }
        }

        fn op(&mut self, op: u8) {
            self.out.push(op);
        }

        /// Stores the object on top of the stack in the memo; returns its index.
        fn memoize(&mut self) -> u32 {
            let id = self.next_memo;
            self.next_memo += 1;
            match u8::try_from(id) {
                Ok(id) => self.out.extend([BINPUT, id]),
                Err(_) => {
                    self.out.push(LONG_BINPUT);
                    self.out.extend(id.to_le_bytes());
                }
            }
            id
        }

        fn memo_get(&mut self, id: u32) {
            match u8::try_from(id) {
                Ok(id) => self.out.extend([BINGET, id]),
                Err(_) => {
                    self.out.push(LONG_BINGET);
                    self.out.extend(id.to_le_bytes());
                }
            }
        }

        /// Pushes a memoised object if it was seen, else writes it with `write` and memoises it.
        fn once(&mut self, tag: String, write: impl FnOnce(&mut Self)) {
            if let Some(&id) = self.seen.get(&tag) {
                self.memo_get(id);
            } else {
                write(self);
                let id = self.memoize();
                self.seen.insert(tag, id);
            }
        }

        fn global(&mut self, module: &str, name: &str) {
            self.once(format!("global {module}.{name}"), |p| {
                p.op(GLOBAL);
                p.out.extend(format!("{module}\n{name}\n").bytes());
            });
        }

        fn str(&mut self, s: &str) {
            self.op(BINUNICODE);
            self.out.extend((s.len() as u32).to_le_bytes());
            self.out.extend(s.bytes());
            self.memoize();
        }

        /// A string constant that is one Python object everywhere ('storage', 'cpu').
        fn interned_str(&mut self, s: &str) {
            self.once(format!("str {s}"), |p| {
                p.op(BINUNICODE);
                p.out.extend((s.len() as u32).to_le_bytes());
                p.out.extend(s.bytes());
            });
        }

        fn int(&mut self, v: usize) {
            if let Ok(v) = u8::try_from(v) {
                self.out.extend([BININT1, v]);
            } else if let Ok(v) = u16::try_from(v) {
                self.op(BININT2);
                self.out.extend(v.to_le_bytes());
            } else {
                let v = i32::try_from(v).expect("LONG1 not needed for these sizes");
                self.op(BININT);
                self.out.extend(v.to_le_bytes());
            }
        }

        fn int_tuple(&mut self, values: &[usize]) {
            if values.is_empty() {
                return self.op(EMPTY_TUPLE); // not memoised, as in CPython
            }
            if values.len() > 3 {
                self.op(MARK);
            }
            values.iter().for_each(|&v| self.int(v));
            self.op(match values.len() {
                1 => TUPLE1,
                2 => TUPLE2,
                3 => TUPLE3,
                _ => TUPLE,
            });
            self.memoize();
        }

        /// `collections.OrderedDict()`: GLOBAL, EMPTY_TUPLE, REDUCE.
        fn empty_ordered_dict(&mut self) {
            self.global("collections", "OrderedDict");
            self.op(EMPTY_TUPLE);
            self.op(REDUCE);
            self.memoize();
        }

        /// `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`
        /// for a contiguous f32 tensor that owns storage `key`.
        fn tensor(&mut self, key: &str, dims: &[usize]) {
            let numel: usize = dims.iter().product();
            let mut strides = vec![1; dims.len()];
            for i in (0..dims.len().saturating_sub(1)).rev() {
                strides[i] = strides[i + 1] * dims[i + 1];
            }
            self.global("torch._utils", "_rebuild_tensor_v2");
            self.op(MARK);
            // The storage, as a persistent id the unpickler resolves to data/<key>.
            self.op(MARK);
            self.interned_str("storage");
            self.global("torch", "FloatStorage");
            self.str(key);
            self.interned_str("cpu");
            self.int(numel);
            self.op(TUPLE);
            self.memoize();
            self.op(BINPERSID);
            self.int(0); // storage_offset
            self.int_tuple(dims);
            self.int_tuple(&strides);
            self.op(NEWFALSE); // requires_grad
            self.empty_ordered_dict(); // backward_hooks
            self.op(TUPLE);
            self.memoize();
            self.op(REDUCE);
            self.memoize();
        }

        /// An OrderedDict state dict as `OrderedDict.__reduce__` pickles it: the empty
        /// dict, its items in one SETITEMS batch, then the instance `__dict__` (here
        /// `_metadata = {'': {'version': 1}}`, which `nn.Module.state_dict` attaches)
        /// applied with BUILD.
        fn state_dict(&mut self, entries: &[(String, Vec<usize>)]) {
            self.empty_ordered_dict();
            self.op(MARK);
            for (i, (name, dims)) in entries.iter().enumerate() {
                self.str(name);
                self.tensor(&i.to_string(), dims);
            }
            self.op(SETITEMS);
            // State: {'_metadata': OrderedDict([('', {'version': 1})])}.
            self.op(EMPTY_DICT);
            self.memoize();
            self.str("_metadata");
            self.empty_ordered_dict();
            self.str("");
            self.op(EMPTY_DICT);
            self.memoize();
            self.str("version");
            self.int(1);
            self.op(SETITEM);
            self.op(SETITEM);
            self.op(SETITEM);
            self.op(BUILD);
        }
    }

    /// Writes `tensors` (f32) to `path` in torch's zip format; each tensor gets its own
    /// storage, keyed "0", "1", … in name order.
    pub fn save(path: &Path, tensors: &BTreeMap<String, Tensor>, layout: Layout) {
        let entries: Vec<(String, Vec<usize>)> = tensors.iter().map(|(n, t)| (n.clone(), t.dims().to_vec())).collect();
        let mut p = Pickler::new();
        match layout {
            Layout::StateDict => p.state_dict(&entries),
            Layout::Nested { key } => {
                p.op(EMPTY_DICT);
                p.memoize();
                p.str(key);
                p.state_dict(&entries);
                p.op(SETITEM);
            }
        }
        p.op(STOP);

        let top = path.file_stem().and_then(|s| s.to_str()).expect("utf-8 file stem");
        let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut zip = ZipWriter::new(file);
        // Torch stores entries uncompressed with data aligned to 64 bytes (so it can mmap).
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .with_alignment(64);
        let mut put = |name: &str, bytes: &[u8]| {
            zip.start_file(format!("{top}/{name}"), options).unwrap();
            zip.write_all(bytes).unwrap();
        };
        put("data.pkl", &p.out);
        put("byteorder", b"little");
        for (i, t) in tensors.values().enumerate() {
            assert_eq!(t.dtype(), DType::F32, "this writer only emits FloatStorage");
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            put(&format!("data/{i}"), &bytes);
        }
        put("version", b"3\n");
        zip.finish().unwrap();
    }
}

/// The embedded SqueezeNet-1.1 tensors, by name.
fn squeezenet_tensors() -> BTreeMap<String, Tensor> {
    candle_core::safetensors::load_buffer(DEFAULT_MODEL, &Device::Cpu)
        .unwrap()
        .into_iter()
        .collect()
}

fn tmp_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// A fixed standard-normal batch [2, 3, 224, 224].
fn random_input() -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let data: Vec<f32> = (0..2 * 3 * 224 * 224).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_vec(data, (2, 3, 224, 224), &Device::Cpu).unwrap()
}

/// Loads `path` and checks it is SqueezeNet-1.1 with the embedded model's logits.
fn assert_same_model_as_embedded(path: &Path) {
    let reference = pathscope::assets::default_classifier(&Device::Cpu).unwrap();
    let loaded = Classifier::load(path, &Device::Cpu).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    assert_eq!(loaded.architecture(), Architecture::SqueezeNet1_1);

    let x = random_input();
    let expected = reference.forward(&x).unwrap();
    let got = loaded.forward(&x).unwrap();
    assert_eq!(got.dims(), &[2, 1000]);
    assert_eq!(got.dims(), expected.dims());
    let (got, expected) = (flat(&got), flat(&expected));
    let max_diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff <= 1e-6,
        "{}: logits differ by up to {max_diff}",
        path.display()
    );
    // Not vacuous: the logits carry information (a constant output would also "match").
    let spread = expected.iter().cloned().fold(f32::MIN, f32::max) - expected.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 1.0, "reference logits suspiciously flat (spread {spread})");
}

#[test]
fn pth_state_dict_matches_safetensors() {
    let path = tmp_path("squeezenet.pth");
    let tensors = squeezenet_tensors();
    assert_eq!(tensors.len(), 52);
    torch_save::save(&path, &tensors, torch_save::Layout::StateDict);

    // The reader returns exactly the tensors written, bit for bit: no name lost or
    // added (the `_metadata` entry is skipped), no shape or byte changed.
    let read: BTreeMap<String, Tensor> = candle_core::pickle::read_all(&path).unwrap().into_iter().collect();
    assert_eq!(read.keys().collect::<Vec<_>>(), tensors.keys().collect::<Vec<_>>());
    for (name, t) in &tensors {
        let r = &read[name];
        assert_eq!(r.dims(), t.dims(), "{name}");
        let same_bits = flat(r).iter().zip(flat(t)).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same_bits, "{name}: values differ");
    }

    assert_same_model_as_embedded(&path);
}

#[test]
fn pth_nested_under_state_dict_key_loads() {
    let path = tmp_path("squeezenet_nested.pth");
    torch_save::save(
        &path,
        &squeezenet_tensors(),
        torch_save::Layout::Nested { key: "state_dict" },
    );
    // Read as a plain state dict the file holds no tensors, only the nested dict…
    assert!(candle_core::pickle::read_all(&path).unwrap().is_empty());
    // …so loading works only by unwrapping the "state_dict" key.
    assert_same_model_as_embedded(&path);
}

#[test]
fn truncated_pth_is_an_error_naming_the_file() {
    let path = tmp_path("squeezenet_truncated.pth");
    torch_save::save(&path, &squeezenet_tensors(), torch_save::Layout::StateDict);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let err = Classifier::load(&path, &Device::Cpu)
        .err()
        .expect("a half-written .pth must not load");
    let message = err.to_string();
    assert!(
        message.contains("squeezenet_truncated.pth"),
        "error does not name the file: {message}"
    );
}
