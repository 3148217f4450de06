//! One error type for everything between a checkpoint on disk and an embedding, each variant
//! naming the file, tensor, text or image it is about (the browser shows these verbatim).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClipError {
    /// A file of the model directory is missing or unreadable.
    #[error("{file}: {detail}")]
    File { file: String, detail: String },
    /// config.json / open_clip_config.json / preprocessor_config.json does not describe a model
    /// this crate can run.
    #[error("{file}: {detail}")]
    Config { file: String, detail: String },
    /// The safetensors container itself is broken (truncated, bad header, unknown dtype).
    #[error("{file}: not a readable safetensors file: {detail}")]
    Checkpoint { file: String, detail: String },
    /// A PyTorch `.pt` checkpoint (`prefscope convert`) that is not a readable torch.save
    /// archive, or whose pickle asks for more than tensors and plain containers.
    #[error("{file}: {detail}")]
    Torch { file: String, detail: String },
    #[error("{file}: tensor `{tensor}` is missing (the config needs it)")]
    MissingTensor { file: String, tensor: String },
    /// A tensor the config's architecture has no place for (`prefscope convert`).
    #[error("{file}: tensor `{tensor}` is not part of the model the config describes (another architecture?)")]
    UnexpectedTensor { file: String, tensor: String },
    #[error("{file}: tensor `{tensor}` has shape {found:?}, the config implies {expected:?}")]
    Shape { file: String, tensor: String, expected: Vec<usize>, found: Vec<usize> },
    #[error(
        "{file}: tensor `{tensor}` is stored as {dtype}; prefscope reads F32, F16, BF16 and I8 (with its `_scale`)"
    )]
    DType { file: String, tensor: String, dtype: String },
    #[error("{file}: tensor `{tensor}` holds a non-finite value at index {index}")]
    NonFinite { file: String, tensor: String, index: usize },
    /// An int8 tensor whose scales are missing or malformed (`prefscope quantize`'s format).
    #[error("{file}: int8 tensor `{tensor}`: {detail}")]
    Quantized { file: String, tensor: String, detail: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("image {name}: {detail}")]
    Image { name: String, detail: String },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Gpu(#[from] prefscope_gpu::GpuError),
    /// The burn backend failed while running the towers (device lost, out of memory).
    #[error("running the model: {0}")]
    Execution(String),
}

impl ClipError {
    pub(crate) fn config(file: &str, detail: impl Into<String>) -> Self {
        ClipError::Config { file: file.to_string(), detail: detail.into() }
    }
}
