//! The files of a model, by name: a directory natively (read when needed, so a folder holding
//! both a transformers and an open_clip copy of the weights reads only one), or bytes handed
//! over by the browser (fetched or dropped files).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::config::ClipConfig;
use crate::error::ClipError;

const HF_CONFIG: &str = "config.json";
const HF_WEIGHTS: &str = "model.safetensors";
const OPEN_CLIP_CONFIG: &str = "open_clip_config.json";
const OPEN_CLIP_WEIGHTS: &str = "open_clip_model.safetensors";

enum Entry {
    Bytes(Vec<u8>),
    /// A file the caller streams from its own [`crate::weights::Source`] (the weights in the
    /// browser): named here so the layout can be recognised, never read into memory.
    Streamed,
    #[cfg(not(target_arch = "wasm32"))]
    Path(std::path::PathBuf),
}

#[derive(Default)]
pub struct ModelFiles {
    entries: BTreeMap<String, Entry>,
}

impl ModelFiles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file by name.
    pub fn insert(&mut self, name: &str, bytes: Vec<u8>) {
        self.entries.insert(name.to_string(), Entry::Bytes(bytes));
    }

    /// Names a file whose bytes the caller streams itself ([`crate::Encoder::load_streamed`]).
    pub fn insert_streamed(&mut self, name: &str) {
        self.entries.insert(name.to_string(), Entry::Streamed);
    }

    /// The files' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// A file's bytes, `None` when the model has no such file.
    pub fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>, ClipError> {
        match self.entries.get(name) {
            None => Ok(None),
            Some(Entry::Bytes(b)) => Ok(Some(Cow::Borrowed(b))),
            Some(Entry::Streamed) => Err(ClipError::File {
                file: name.to_string(),
                detail: "is streamed from its own source and not held in memory".into(),
            }),
            #[cfg(not(target_arch = "wasm32"))]
            Some(Entry::Path(path)) => std::fs::read(path)
                .map(|b| Some(Cow::Owned(b)))
                .map_err(|e| ClipError::File { file: path.display().to_string(), detail: e.to_string() }),
        }
    }

    /// The JSON and safetensors files of a model directory (read when needed).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, ClipError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ClipError::File {
            file: dir.display().to_string(),
            detail: format!("cannot read the model directory: {e}"),
        })?;
        let mut files = ModelFiles::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") || name.ends_with(".safetensors") {
                files.entries.insert(name, Entry::Path(entry.path()));
            }
        }
        Ok(files)
    }

    /// The name of the weights file the config calls for (what a caller streams).
    pub fn weights_name(&self) -> Result<String, ClipError> {
        Ok(self.config()?.1)
    }

    /// The config and the weights' file name. transformers' layout wins when a folder has both
    /// (laion's Hub repositories do); open_clip's weights may carry any name when they are the
    /// only .safetensors file.
    pub fn config(&self) -> Result<(ClipConfig, String), ClipError> {
        let text = |name: &str| -> Result<Option<Vec<u8>>, ClipError> { Ok(self.read(name)?.map(Cow::into_owned)) };
        if self.contains(HF_CONFIG) && (self.contains(HF_WEIGHTS) || !self.contains(OPEN_CLIP_CONFIG)) {
            let config = text(HF_CONFIG)?.unwrap_or_default();
            let config = ClipConfig::from_huggingface(&config, text("preprocessor_config.json")?.as_deref())?;
            return Ok((config, HF_WEIGHTS.to_string()));
        }
        if let Some(config) = text(OPEN_CLIP_CONFIG)? {
            let config = ClipConfig::from_open_clip(&config)?;
            let weights = if self.contains(OPEN_CLIP_WEIGHTS) {
                OPEN_CLIP_WEIGHTS.to_string()
            } else {
                self.single_safetensors()?
            };
            return Ok((config, weights));
        }
        Err(ClipError::File {
            file: HF_CONFIG.into(),
            detail: "missing: a model needs config.json (transformers CLIPModel) or open_clip_config.json".into(),
        })
    }

    fn single_safetensors(&self) -> Result<String, ClipError> {
        let found: Vec<&String> = self.entries.keys().filter(|k| k.ends_with(".safetensors")).collect();
        match found.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(ClipError::File {
                file: OPEN_CLIP_WEIGHTS.into(),
                detail: "missing: no .safetensors file in the model".into(),
            }),
            many => Err(ClipError::File {
                file: OPEN_CLIP_WEIGHTS.into(),
                detail: format!("missing, and several other .safetensors files ({many:?}) leave the choice open"),
            }),
        }
    }
}
