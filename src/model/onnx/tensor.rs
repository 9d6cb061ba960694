//! ONNX tensors as constants: initializers and `Constant` nodes, their bytes inline or in
//! an external data file beside the model (what `torch.onnx.export(..., dynamo=True)`
//! writes as `MODEL.onnx.data`), and node attributes.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::proto::{data_type, AttributeProto, NodeProto, TensorProto};

/// A constant: an initializer or the output of a `Constant` node. Booleans and 8-bit
/// integers are kept as integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    Float { dims: Vec<usize>, data: Vec<f32> },
    Int { dims: Vec<usize>, data: Vec<i64> },
}

impl Constant {
    pub fn dims(&self) -> &[usize] {
        match self {
            Constant::Float { dims, .. } | Constant::Int { dims, .. } => dims,
        }
    }

    pub fn floats(&self) -> Vec<f32> {
        match self {
            Constant::Float { data, .. } => data.clone(),
            Constant::Int { data, .. } => data.iter().map(|&v| v as f32).collect(),
        }
    }

    pub fn ints(&self) -> Vec<i64> {
        match self {
            Constant::Float { data, .. } => data.iter().map(|&v| v as i64).collect(),
            Constant::Int { data, .. } => data.clone(),
        }
    }
}

/// The external data files of one model, each read once, and where they may be.
pub struct ExternalData {
    /// The model's folder; `None` for a model held in memory (it can have no external data).
    folder: Option<PathBuf>,
    files: HashMap<String, Vec<u8>>,
}

impl ExternalData {
    /// For a model read from `model_path` (its external files are beside it).
    pub fn beside(model_path: &Path) -> Self {
        let folder = model_path
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
            .map(Path::to_path_buf);
        Self {
            folder,
            files: HashMap::new(),
        }
    }

    /// For a model held in memory.
    pub fn none() -> Self {
        Self {
            folder: None,
            files: HashMap::new(),
        }
    }

    /// The bytes `t` keeps in an external file, checked against the file.
    fn bytes(&mut self, t: &TensorProto) -> Result<&[u8], String> {
        let entry = |key: &str| t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
        let location = entry("location")
            .ok_or_else(|| format!("tensor `{}` is stored externally but names no location", t.name))?;
        let number = |key: &str| -> Result<Option<u64>, String> {
            entry(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("tensor `{}`: external data {key} `{v}` is not a number", t.name))
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let length = number("length")?;
        let Some(folder) = &self.folder else {
            return Err(format!(
                "tensor `{}` is stored in the external file `{location}`, but the model was given as bytes \
                 without its folder",
                t.name
            ));
        };
        let relative = Path::new(location);
        let escapes = relative.is_absolute()
            || relative
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_)));
        if escapes || location.is_empty() {
            return Err(format!(
                "tensor `{}`: external data location `{location}` leaves the model's folder; refused",
                t.name
            ));
        }
        let path = folder.join(relative);
        if !self.files.contains_key(location) {
            // A link inside the folder must not lead out of it either.
            let inside = match (path.canonicalize(), folder.canonicalize()) {
                (Ok(file), Ok(dir)) => file.starts_with(dir),
                _ => true,
            };
            if !inside {
                return Err(format!(
                    "tensor `{}`: external data `{}` leads out of the model's folder; refused",
                    t.name,
                    path.display()
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "tensor `{}` keeps its data in `{}`, which cannot be read ({e}); keep the .onnx.data \
                     file beside the model",
                    t.name,
                    path.display()
                )
            })?;
            self.files.insert(location.to_string(), bytes);
        }
        let file = &self.files[location];
        let size = file.len() as u64;
        let length = length.unwrap_or(size.saturating_sub(offset));
        let end = offset.checked_add(length).filter(|&e| e <= size).ok_or_else(|| {
            format!(
                "tensor `{}`: bytes {offset}..{} of `{}` are asked for, past the end of the file ({size} bytes; \
                 cut short?)",
                t.name,
                offset.saturating_add(length),
                path.display()
            )
        })?;
        Ok(&file[offset as usize..end as usize])
    }
}

/// Little-endian elements of `raw`, `size` bytes each.
fn chunks<T>(raw: &[u8], size: usize, f: impl Fn(&[u8]) -> T) -> Vec<T> {
    raw.chunks_exact(size).map(f).collect()
}

/// Decodes a tensor whose bytes are inline (a node's attribute).
pub fn decode_tensor(t: &TensorProto) -> Result<Constant, String> {
    if t.data_location == 1 {
        return Err(format!(
            "tensor `{}` is stored in an external file; only initializers may keep their data outside the model",
            t.name
        ));
    }
    decode_tensor_with(t, &mut ExternalData::none())
}

/// Decodes a tensor, reading external data through `external`.
pub fn decode_tensor_with(t: &TensorProto, external: &mut ExternalData) -> Result<Constant, String> {
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut count: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("tensor `{}` has a negative dimension {d}", t.name))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| format!("tensor `{}` has an impossible shape {:?}", t.name, t.dims))?;
        dims.push(d);
    }
    let external_bytes;
    let raw: &[u8] = if t.data_location == 1 {
        external_bytes = external.bytes(t)?;
        external_bytes
    } else {
        &t.raw_data
    };
    let has_raw = !raw.is_empty() || t.data_location == 1;
    let float = |data: Vec<f32>| Constant::Float {
        dims: dims.clone(),
        data,
    };
    let int = |data: Vec<i64>| Constant::Int {
        dims: dims.clone(),
        data,
    };
    let constant = match t.data_type {
        data_type::FLOAT if has_raw => float(chunks(raw, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        data_type::FLOAT => float(t.float_data.clone()),
        data_type::DOUBLE if has_raw => float(chunks(raw, 8, |b| {
            f64::from_le_bytes(b.try_into().expect("chunks of 8")) as f32
        })),
        data_type::DOUBLE => float(t.double_data.iter().map(|&v| v as f32).collect()),
        data_type::FLOAT16 if has_raw => float(chunks(raw, 2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())),
        // float16 in int32_data: one element per entry, its bits in the low half.
        data_type::FLOAT16 => float(
            t.int32_data
                .iter()
                .map(|&v| half::f16::from_bits(v as u16).to_f32())
                .collect(),
        ),
        data_type::INT64 if has_raw => int(chunks(raw, 8, |b| {
            i64::from_le_bytes(b.try_into().expect("chunks of 8"))
        })),
        data_type::INT64 => int(t.int64_data.clone()),
        data_type::INT32 if has_raw => int(chunks(raw, 4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)),
        data_type::INT32 => int(t.int32_data.iter().map(|&v| v as i64).collect()),
        data_type::BOOL | data_type::UINT8 if has_raw => int(raw.iter().map(|&b| b as i64).collect()),
        data_type::INT8 if has_raw => int(raw.iter().map(|&b| b as i8 as i64).collect()),
        data_type::BOOL | data_type::UINT8 | data_type::INT8 => int(t.int32_data.iter().map(|&v| v as i64).collect()),
        other => {
            return Err(format!(
                "tensor `{}` has ONNX data type {other}; only float32/float16/float64 weights and \
                 int32/int64/bool/8-bit integers are supported",
                t.name
            ))
        }
    };
    let found = match &constant {
        Constant::Float { data, .. } => data.len(),
        Constant::Int { data, .. } => data.len(),
    };
    if found != count {
        return Err(format!(
            "tensor `{}` has shape {:?} ({count} elements) but holds {found} values",
            t.name, t.dims
        ));
    }
    Ok(constant)
}

/// Attributes of one node, by name.
pub struct Attributes<'a> {
    pub node: &'a NodeProto,
}

impl<'a> Attributes<'a> {
    pub fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map(|a| a.i).unwrap_or(default)
    }

    pub fn float(&self, name: &str) -> Option<f32> {
        self.get(name).map(|a| a.f)
    }

    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// A `Constant` node's value, from whichever of its attributes it has.
    pub fn constant_value(&self) -> Result<Constant, String> {
        if let Some(t) = self.get("value").and_then(|a| a.t.as_ref()) {
            return decode_tensor(t);
        }
        if let Some(a) = self.get("value_float") {
            return Ok(Constant::Float {
                dims: vec![],
                data: vec![a.f],
            });
        }
        if let Some(a) = self.get("value_floats") {
            return Ok(Constant::Float {
                dims: vec![a.floats.len()],
                data: a.floats.clone(),
            });
        }
        if let Some(a) = self.get("value_int") {
            return Ok(Constant::Int {
                dims: vec![],
                data: vec![a.i],
            });
        }
        if let Some(a) = self.get("value_ints") {
            return Ok(Constant::Int {
                dims: vec![a.ints.len()],
                data: a.ints.clone(),
            });
        }
        Err("a Constant without a value, value_float(s) or value_int(s) attribute".into())
    }
}

/// Reads a list of ints that must all equal one non-negative value (a square kernel, the
/// same stride on both axes).
pub fn uniform(values: &[i64], what: &str) -> Result<usize, String> {
    match values {
        [] => Err(format!("{what} is empty")),
        [first, rest @ ..] if rest.iter().all(|v| v == first) && *first >= 0 => Ok(*first as usize),
        _ => Err(format!(
            "{what} {values:?} differs between the axes; only equal values are supported"
        )),
    }
}
