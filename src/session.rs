//! Studio sessions as files: the model's path, the photo (its 224×224 crop, so a session
//! still opens when the photo has moved), the studio's settings and view as JSON, and the
//! computed maps.
//!
//! The file is a `.safetensors` container (readable by any safetensors tool): one u8
//! tensor `image` [H, W, 3], one f32 tensor per map, and in the header's metadata
//! `pathscope.session` (the format version), `model`, `image.name`, `image.source` and
//! `state`. Writes are atomic (temporary file, fsync, rename), so a crash mid-write
//! leaves the previous file whole. This module knows nothing of the UI: `state` is
//! whatever JSON the studio stores.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use safetensors::tensor::{serialize, TensorView};
use safetensors::{Dtype, SafeTensors};

/// The session format this build writes, and the newest it reads. Format 2 names tensors
/// and settings by their text forms (`result/vanilla`, `"valid-ip"`); format 1 used Rust
/// identifiers (`result/Vanilla`, `"ValidIp"`), which the studio still reads.
pub const FORMAT_VERSION: u32 = 2;
/// The file extension of sessions.
pub const EXTENSION: &str = "pathscope";

const VERSION_KEY: &str = "pathscope.session";
const IMAGE_TENSOR: &str = "image";
const MAP_PREFIX: &str = "map/";
/// Larger crops are refused on reading (the studio's are 224×224).
const MAX_SIDE: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a Pathscope session ({reason})", path.display())]
    NotASession { path: PathBuf, reason: String },
    #[error(
        "{}: saved by a newer Pathscope (session format {found}; this build reads up to {FORMAT_VERSION}); \
         update Pathscope to open it",
        path.display()
    )]
    NewerVersion { path: PathBuf, found: u32 },
    #[error("{}: damaged session file: {reason}", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot encode the session: {0}")]
    Encode(String),
}

/// The photo of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionImage {
    /// What the studio shows as the image's name.
    pub name: String,
    /// Where it was read from, if it came from a file.
    pub source: Option<PathBuf>,
    /// The preprocessed crop the maps were computed on.
    pub crop: RgbImage,
}

/// One array of floats, e.g. a map [3, 224, 224].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMap {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Session {
    /// Model file; `None` for the embedded default model.
    pub model: Option<PathBuf>,
    pub image: Option<SessionImage>,
    /// The studio's settings and view, as it serialises them.
    pub state: serde_json::Value,
    /// Read back in name order.
    pub maps: Vec<SessionMap>,
}

impl Session {
    pub fn to_bytes(&self) -> Result<Vec<u8>, SessionError> {
        let mut metadata = HashMap::new();
        metadata.insert(VERSION_KEY.to_string(), FORMAT_VERSION.to_string());
        metadata.insert(
            "model".to_string(),
            self.model.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        );
        metadata.insert("state".to_string(), self.state.to_string());
        let mut buffers: Vec<(String, Dtype, Vec<usize>, &[u8])> = Vec::new();
        if let Some(image) = &self.image {
            metadata.insert("image.name".to_string(), image.name.clone());
            if let Some(source) = &image.source {
                metadata.insert("image.source".to_string(), source.display().to_string());
            }
            let (w, h) = image.crop.dimensions();
            buffers.push((
                IMAGE_TENSOR.to_string(),
                Dtype::U8,
                vec![h as usize, w as usize, 3],
                image.crop.as_raw(),
            ));
        }
        for map in &self.maps {
            if map.shape.iter().product::<usize>() != map.data.len() {
                return Err(SessionError::Encode(format!(
                    "map {} has {} values for shape {:?}",
                    map.name,
                    map.data.len(),
                    map.shape
                )));
            }
            buffers.push((
                format!("{MAP_PREFIX}{}", map.name),
                Dtype::F32,
                map.shape.clone(),
                bytemuck::cast_slice(&map.data),
            ));
        }
        let views = buffers
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| SessionError::Encode(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        serialize(views, Some(metadata)).map_err(|e| SessionError::Encode(e.to_string()))
    }

    /// Reads a session from its bytes; `path` names the file in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, SessionError> {
        let not_a_session = |reason: String| SessionError::NotASession {
            path: path.to_path_buf(),
            reason,
        };
        let damaged = |reason: String| SessionError::Damaged {
            path: path.to_path_buf(),
            reason,
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
            if names_a_session(bytes) {
                damaged(format!("{e} (the file is cut short or was altered)"))
            } else {
                not_a_session(format!("unreadable header: {e}"))
            }
        })?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let Some(version) = metadata.get(VERSION_KEY) else {
            return Err(not_a_session(
                "a safetensors file without Pathscope's session header".into(),
            ));
        };
        let version: u32 = version
            .parse()
            .map_err(|_| damaged(format!("session format `{version}` is not a number")))?;
        if version > FORMAT_VERSION {
            return Err(SessionError::NewerVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| damaged(e.to_string()))?;
        let state = match metadata.get("state") {
            Some(s) => serde_json::from_str(s).map_err(|e| damaged(format!("settings: {e}")))?,
            None => serde_json::Value::Null,
        };
        let model = metadata.get("model").filter(|s| !s.is_empty()).map(PathBuf::from);
        let image = match tensors.tensor(IMAGE_TENSOR) {
            Ok(view) => {
                let [h, w, 3] = view.shape()[..] else {
                    return Err(damaged(format!(
                        "image of shape {:?}, expected [H, W, 3]",
                        view.shape()
                    )));
                };
                if view.dtype() != Dtype::U8 || h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE {
                    return Err(damaged(format!("image {:?} of {:?}", view.shape(), view.dtype())));
                }
                let crop = RgbImage::from_raw(w as u32, h as u32, view.data().to_vec())
                    .ok_or_else(|| damaged("image data does not fill its shape".into()))?;
                Some(SessionImage {
                    name: metadata.get("image.name").cloned().unwrap_or_else(|| "image".into()),
                    source: metadata.get("image.source").map(PathBuf::from),
                    crop,
                })
            }
            Err(_) => None,
        };
        let mut maps = Vec::new();
        let mut names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
        names.sort();
        for name in names {
            let Some(short) = name.strip_prefix(MAP_PREFIX) else {
                continue;
            };
            let view = tensors.tensor(&name).map_err(|e| damaged(e.to_string()))?;
            if view.dtype() != Dtype::F32 {
                return Err(damaged(format!("map {short} is {:?}, expected F32", view.dtype())));
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            maps.push(SessionMap {
                name: short.to_string(),
                shape: view.shape().to_vec(),
                data,
            });
        }
        Ok(Self {
            model,
            image,
            state,
            maps,
        })
    }

    pub fn open(path: &Path) -> Result<Self, SessionError> {
        let bytes = std::fs::read(path).map_err(|source| SessionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Writes atomically: the file at `path` is either the old one or the new one.
    pub fn save(&self, path: &Path) -> Result<(), SessionError> {
        let bytes = self.to_bytes()?;
        crate::export::atomic::write_atomic(path, &bytes).map_err(|source| SessionError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn map(&self, name: &str) -> Option<&SessionMap> {
        self.maps.iter().find(|m| m.name == name)
    }
}

/// Whether the header text of a (possibly cut) file carries the session key.
fn names_a_session(bytes: &[u8]) -> bool {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    else {
        return false;
    };
    let end = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .saturating_add(8)
        .min(bytes.len());
    bytes[8..end]
        .windows(VERSION_KEY.len())
        .any(|w| w == VERSION_KEY.as_bytes())
}

/// Where the studio autosaves: `$PATHSCOPE_AUTOSAVE` if set, else
/// `$XDG_STATE_HOME/pathscope/autosave.pathscope` (`~/.local/state/…` by default).
pub fn default_autosave_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATHSCOPE_AUTOSAVE") {
        return Some(PathBuf::from(p));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("pathscope").join(format!("autosave.{EXTENSION}")))
}

/// The file a cleanly closed studio moves its autosave to: reopening it is a choice, not a
/// recovery.
pub fn last_session_path(autosave: &Path) -> PathBuf {
    autosave.with_file_name(format!("last-session.{EXTENSION}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Session {
        let crop = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8, y as u8, (x * y) as u8]));
        Session {
            model: Some(PathBuf::from("/models/resnet18.safetensors")),
            image: Some(SessionImage {
                name: "cat.png".into(),
                source: Some(PathBuf::from("/photos/cat.png")),
                crop,
            }),
            state: serde_json::json!({"settings": {"steps": 50}, "target": 285}),
            maps: vec![
                SessionMap {
                    name: "result/Vanilla".into(),
                    shape: vec![3, 5, 7],
                    data: (0..105).map(|i| i as f32 * 0.25 - 3.0).collect(),
                },
                SessionMap {
                    name: "pinned/0/Idgi".into(),
                    shape: vec![35],
                    data: vec![f32::MIN_POSITIVE; 35],
                },
            ],
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pathscope-session-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_session_reads_back_exactly() {
        let dir = scratch("roundtrip");
        let path = dir.join("s.pathscope");
        let mut s = sample();
        s.save(&path).unwrap();
        // Maps come back sorted by name.
        s.maps.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(Session::open(&path).unwrap(), s);
        // Only the file itself: the temporary was renamed.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        // The default model and no image also round-trip.
        let empty = Session::default();
        empty.save(&path).unwrap();
        let back = Session::open(&path).unwrap();
        assert_eq!((back.model, back.image, back.maps.len()), (None, None, 0));
    }

    #[test]
    fn a_newer_format_is_refused_with_a_clear_message() {
        let bytes = sample().to_bytes().unwrap();
        // Re-serialise the same tensors with a future version in the header.
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        meta.insert(VERSION_KEY.into(), "7".into());
        let views: Vec<(String, TensorView)> = st.tensors();
        let newer = serialize(views, Some(meta)).unwrap();
        let err = Session::from_bytes(Path::new("future.pathscope"), &newer).unwrap_err();
        assert_eq!(
            err.to_string(),
            "future.pathscope: saved by a newer Pathscope (session format 7; this build reads up to 2); \
             update Pathscope to open it"
        );
    }

    #[test]
    fn damaged_and_foreign_files_are_errors_naming_the_problem() {
        let bytes = sample().to_bytes().unwrap();
        let p = Path::new("s.pathscope");
        // Cut anywhere: header or data.
        for cut in [0, 5, 40, bytes.len() / 2, bytes.len() - 1] {
            let err = Session::from_bytes(p, &bytes[..cut]).unwrap_err().to_string();
            // Once the header is in, the file is recognised as a damaged session.
            let expected = if cut > 200 {
                "s.pathscope: damaged session file"
            } else {
                "s.pathscope: not a Pathscope session"
            };
            assert!(err.starts_with(expected), "cut at {cut}: {err}");
        }
        // A safetensors file that is not a session (e.g. exported maps).
        let foreign = serialize(
            vec![("m", TensorView::new(Dtype::F32, vec![1], &[0u8; 4]).unwrap())],
            None,
        )
        .unwrap();
        let err = Session::from_bytes(p, &foreign).unwrap_err().to_string();
        assert_eq!(
            err,
            "s.pathscope: not a Pathscope session (a safetensors file without Pathscope's session header)"
        );
        // Settings that are not JSON.
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut meta = SafeTensors::read_metadata(&bytes)
            .unwrap()
            .1
            .metadata()
            .clone()
            .unwrap();
        meta.insert("state".into(), "{not json".into());
        let broken = serialize(st.tensors(), Some(meta)).unwrap();
        let err = Session::from_bytes(p, &broken).unwrap_err().to_string();
        assert!(err.starts_with("s.pathscope: damaged session file: settings:"), "{err}");
    }

    /// The fuzz seed written by `fuzz/make_seeds.py` (Python's own safetensors layout):
    /// the format is plain safetensors, readable from outside Pathscope.
    #[test]
    fn a_session_written_by_another_tool_reads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/session");
        let s = Session::open(&dir.join("small.pathscope")).unwrap();
        let image = s.image.as_ref().unwrap();
        assert_eq!((image.name.as_str(), image.crop.dimensions()), ("cat.png", (2, 2)));
        assert_eq!(s.state["target"], 281);
        let names: Vec<&str> = s.maps.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["pinned/0/Idgi", "result/Vanilla"]);
        assert_eq!(s.map("result/Vanilla").unwrap().data[..3], [-1.0, -0.5, 0.0]);
        let err = Session::open(&dir.join("newer.pathscope")).unwrap_err().to_string();
        assert!(err.contains("session format 3; this build reads up to 2"), "{err}");
    }

    #[test]
    fn a_failed_save_leaves_the_previous_file_whole() {
        let dir = scratch("atomic");
        let path = dir.join("s.pathscope");
        sample().save(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A map whose data does not fill its shape fails before anything is written.
        let mut bad = sample();
        bad.maps[0].data.pop();
        assert!(bad.save(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // An unwritable destination is an I/O error naming it.
        let err = sample()
            .save(&dir.join("missing/dir/s.pathscope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing/dir/s.pathscope"), "{err}");
    }
}
