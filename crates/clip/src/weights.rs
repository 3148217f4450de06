//! Weights from safetensors bytes (the browser has no paths) into the towers, for both
//! layouts: transformers' names, and open_clip's with its stacked q/k/v and transposed
//! projections. Every tensor is checked against the shape the config implies and for finite
//! values, then handed to a [`Target`] — host vectors for the CPU towers, device buffers for
//! the GPU towers, burn parameters for training (`model.rs`) — which stores it in its compute
//! type (`dtype.rs`): matrices and embeddings in f32, f16 or int8, LayerNorm parameters in f32.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;

use crate::config::{ClipConfig, Layout, Tower};
use crate::error::ClipError;

/// Where a checkpoint's bytes come from: a slice in memory (a file read natively, bytes a test
/// built), or, in the browser, a `Blob` that stays outside wasm memory (`blob.rs`) so that a
/// ViT-H checkpoint of gigabytes streams to the device one tensor at a time.
pub trait Source {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// Bytes `start..end` of the file (the caller keeps the range inside `size`).
    fn range(&self, start: u64, end: u64) -> impl Future<Output = Result<Cow<'_, [u8]>, String>>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn range(&self, start: u64, end: u64) -> impl Future<Output = Result<Cow<'_, [u8]>, String>> {
        std::future::ready(Ok(Cow::Borrowed(&self[start as usize..end as usize])))
    }
}

/// Runs a future that never waits (every read from an in-memory [`Source`]) to its end, so
/// the synchronous loads share the streaming loader.
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("an in-memory checkpoint never waits"),
    }
}

/// Longest safetensors header read (the format's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// A parsed safetensors header over its [`Source`]: tensors are read (and checked) one at a
/// time, when the loader asks for them.
pub struct Checkpoint<S> {
    file: String,
    tensors: BTreeMap<String, TensorInfo>,
    /// Offset of the data section (after the 8-byte length and the header).
    data_start: u64,
    /// The dtype `prefscope quantize` recorded (`__metadata__["prefscope.dtype"]`).
    stored: Option<crate::dtype::Dtype>,
    source: S,
}

/// The metadata key `prefscope quantize` writes its dtype under.
pub const DTYPE_KEY: &str = "prefscope.dtype";

/// The suffix of an int8 tensor's scales: `<name>_scale`.
pub const SCALE_SUFFIX: &str = "_scale";

impl<'a> Checkpoint<&'a [u8]> {
    /// A checkpoint held in memory.
    pub fn parse(file: &str, bytes: &'a [u8]) -> Result<Self, ClipError> {
        ready(Checkpoint::open(file, bytes))
    }
}

impl<S: Source> Checkpoint<S> {
    /// Reads and checks the header: offsets contiguous from 0, each tensor's bytes matching its
    /// dtype and shape, and the data section exactly as long as the file's remainder.
    pub async fn open(file: &str, source: S) -> Result<Self, ClipError> {
        let bad = |detail: String| ClipError::Checkpoint { file: file.to_string(), detail };
        let len = source.size();
        if len < 8 {
            return Err(bad("shorter than its 8-byte header length".into()));
        }
        let head = source.range(0, 8).await.map_err(bad)?;
        let Ok(head) = <[u8; 8]>::try_from(&head[..]) else {
            return Err(bad(format!("reading its 8-byte header length gave {} bytes", head.len())));
        };
        let n = u64::from_le_bytes(head);
        if n > MAX_HEADER || n > len - 8 {
            return Err(bad(format!("its header claims {n} bytes, past the file's {len} bytes or the format's limit")));
        }
        let header = source.range(8, 8 + n).await.map_err(bad)?;
        let metadata: Metadata = serde_json::from_slice(&header).map_err(|e| bad(format!("invalid header: {e}")))?;
        let mut tensors: Vec<(String, TensorInfo)> =
            metadata.tensors().into_iter().map(|(name, info)| (name, info.clone())).collect();
        tensors.sort_by_key(|(_, info)| info.data_offsets);
        let mut end = 0usize;
        for (name, info) in &tensors {
            let (s, e) = info.data_offsets;
            let elements = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let bytes = elements.and_then(|n| n.checked_mul(info.dtype.bitsize())).map(|bits| bits.div_ceil(8));
            if s != end || Some(e.wrapping_sub(s)) != bytes || e < s {
                return Err(bad(format!("tensor `{name}` has invalid data offsets {s}..{e}")));
            }
            end = e;
        }
        if end as u64 != len - 8 - n {
            return Err(bad(format!(
                "the header describes {end} bytes of tensor data, the file holds {} (truncated or padded)",
                len - 8 - n
            )));
        }
        let stored = match metadata.metadata().as_ref().and_then(|m| m.get(DTYPE_KEY)) {
            None => None,
            Some(name) => Some(
                crate::dtype::Dtype::parse(name)
                    .ok_or_else(|| bad(format!("its metadata names an unknown dtype `{name}` under {DTYPE_KEY}")))?,
            ),
        };
        Ok(Checkpoint {
            file: file.to_string(),
            tensors: tensors.into_iter().collect(),
            data_start: 8 + n,
            stored,
            source,
        })
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// The dtype `prefscope quantize` wrote the checkpoint in.
    pub fn stored_dtype(&self) -> Option<crate::dtype::Dtype> {
        self.stored
    }

    /// Every tensor is stored as F16 or BF16 (a half-precision checkpoint).
    pub fn stored_half(&self) -> bool {
        self.tensors.values().all(|info| matches!(info.dtype, Dtype::F16 | Dtype::BF16))
    }

    async fn bytes(&self, info: &TensorInfo) -> Result<Cow<'_, [u8]>, ClipError> {
        let (s, e) = info.data_offsets;
        let bad = |detail: String| ClipError::Checkpoint { file: self.file.clone(), detail };
        let bytes = self.source.range(self.data_start + s as u64, self.data_start + e as u64).await.map_err(bad)?;
        if bytes.len() != e - s {
            return Err(bad(format!("reading bytes {s}..{e} of the data gave {} bytes", bytes.len())));
        }
        Ok(bytes)
    }

    /// The first tensor with a finite value past f16's largest (65504), which f16 compute
    /// would turn into infinity. F16 tensors fit by construction. Reads one tensor at a time.
    pub async fn f16_overflow(&self) -> Result<Option<String>, ClipError> {
        let limit = half::f16::MAX.to_f32();
        let too_big = |v: f32| v.is_finite() && v.abs() > limit;
        for (name, info) in &self.tensors {
            let over = match info.dtype {
                Dtype::F32 => {
                    let bytes = self.bytes(info).await?;
                    bytes.chunks_exact(4).any(|b| too_big(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                }
                Dtype::BF16 => {
                    let bytes = self.bytes(info).await?;
                    bytes.chunks_exact(2).any(|b| too_big(half::bf16::from_le_bytes([b[0], b[1]]).to_f32()))
                }
                _ => false,
            };
            if over {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// The tensor `name` as f32, after checking it has exactly `shape` and finite values.
    pub async fn read(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ClipError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| ClipError::MissingTensor { file: self.file.clone(), tensor: name.to_string() })?;
        if info.shape != shape {
            return Err(ClipError::Shape {
                file: self.file.clone(),
                tensor: name.to_string(),
                expected: shape.to_vec(),
                found: info.shape.clone(),
            });
        }
        if !matches!(info.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::I8) {
            return Err(ClipError::DType {
                file: self.file.clone(),
                tensor: name.to_string(),
                dtype: format!("{:?}", info.dtype),
            });
        }
        let bytes = self.bytes(info).await?;
        let values: Vec<f32> = match info.dtype {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            _ => self.dequantize(name, &info.shape, &bytes).await?,
        };
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(ClipError::NonFinite { file: self.file.clone(), tensor: name.to_string(), index });
        }
        Ok(values)
    }

    /// A tensor as stored: its dtype, shape and bytes (for rewriting a checkpoint).
    pub async fn raw(&self, name: &str) -> Result<(Dtype, Vec<usize>, Cow<'_, [u8]>), ClipError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| ClipError::MissingTensor { file: self.file.clone(), tensor: name.to_string() })?;
        Ok((info.dtype, info.shape.clone(), self.bytes(info).await?))
    }

    /// Int8 codes times `<name>_scale` (see [`Checkpoint::scales`]).
    async fn dequantize(&self, name: &str, shape: &[usize], codes: &[u8]) -> Result<Vec<f32>, ClipError> {
        let (axis, scales) = self.scales(name, shape).await?;
        if let [scale] = scales[..] {
            return Ok(codes.iter().map(|&c| c as i8 as f32 * scale).collect());
        }
        // Element i's index along `axis`: (i / inner) % shape[axis].
        let inner: usize = shape[axis + 1..].iter().product::<usize>().max(1);
        Ok(codes.iter().enumerate().map(|(i, &c)| c as i8 as f32 * scales[(i / inner) % scales.len()]).collect())
    }

    /// The scales of the int8 tensor `name` and the axis they run along: `<name>_scale` has the
    /// tensor's rank with 1 on every axis but that one (so that `codes * scale` broadcasts, as
    /// in numpy or torch), or 1 everywhere (one scale, axis 0).
    async fn scales(&self, name: &str, shape: &[usize]) -> Result<(usize, Vec<f32>), ClipError> {
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let bad = |detail: String| ClipError::Quantized { file: self.file.clone(), tensor: name.to_string(), detail };
        let info = self
            .tensors
            .get(&scale_name)
            .ok_or_else(|| bad(format!("no `{scale_name}` beside it (the scales `prefscope quantize` writes)")))?;
        let axes: Vec<usize> = (0..info.shape.len()).filter(|&a| info.shape[a] != 1).collect();
        let axis = match axes[..] {
            [] if info.shape.len() == shape.len() => 0,
            [a] if info.shape.len() == shape.len() && info.shape[a] == shape[a] => a,
            _ => {
                return Err(bad(format!(
                    "`{scale_name}` has shape {:?}: for `{name}` of shape {shape:?} it needs the same rank, \
                     1 everywhere but one axis, and that axis's length",
                    info.shape
                )))
            }
        };
        if info.dtype != Dtype::F32 {
            return Err(bad(format!("`{scale_name}` is {:?}; scales are F32", info.dtype)));
        }
        let raw = self.bytes(info).await?;
        let scales: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        // A code times its scale must stay finite too (|code| ≤ 127).
        if let Some(index) = scales.iter().position(|s| !(s * 127.0).is_finite() || *s < 0.0) {
            return Err(bad(format!(
                "`{scale_name}` holds {} at index {index} (scales are finite, ≥ 0, and at most f32::MAX / 127)",
                scales[index]
            )));
        }
        Ok((axis, scales))
    }

    /// The tensor `name` of `shape` as a `[shape[0], rest]` matrix, int8 codes kept as they are
    /// where their scales run along the first or (for a 2-D tensor) the second axis; f32
    /// otherwise. Checked as [`Checkpoint::read`] checks.
    pub(crate) async fn read_matrix(&self, name: &str, shape: &[usize]) -> Result<Stored, ClipError> {
        let rows = shape[0];
        let cols = shape[1..].iter().product();
        let values = match self.tensors.get(name) {
            Some(info) if info.dtype == Dtype::I8 && info.shape == shape => {
                let (axis, scales) = self.scales(name, shape).await?;
                let per_row = axis == 0 && scales.len() == rows;
                if per_row || (shape.len() == 2 && axis == 1 && scales.len() == cols) {
                    let codes = self.bytes(info).await?.iter().map(|&b| b as i8).collect();
                    StoredValues::Q8 { codes, scales, per_row }
                } else {
                    StoredValues::F32(self.read(name, shape).await?)
                }
            }
            _ => StoredValues::F32(self.read(name, shape).await?),
        };
        Ok(Stored { rows, cols, values })
    }
}

/// A matrix as the checkpoint stores it, `[rows, cols]`, before its target decides how to keep
/// it: int8 codes reach the CPU towers' int8 matrices without a round trip through f32.
pub(crate) struct Stored {
    pub rows: usize,
    pub cols: usize,
    pub values: StoredValues,
}

pub(crate) enum StoredValues {
    F32(Vec<f32>),
    /// One scale per row (`per_row`) or per column.
    Q8 {
        codes: Vec<i8>,
        scales: Vec<f32>,
        per_row: bool,
    },
}

impl Stored {
    /// The values in f32, `[rows, cols]`.
    pub fn into_f32(self) -> Vec<f32> {
        match self.values {
            StoredValues::F32(v) => v,
            StoredValues::Q8 { codes, scales, per_row } => {
                let at = |i: usize| if per_row { i / self.cols.max(1) } else { i % self.cols.max(1) };
                codes.iter().enumerate().map(|(i, &q)| q as f32 * scales[at(i)]).collect()
            }
        }
    }

    /// The values in f32 in the product's `[k, n]` orientation: transposed when stored
    /// `[n, k]` (`out_major`, torch's Linear).
    pub fn into_kn(self, out_major: bool) -> (Vec<f32>, [usize; 2]) {
        let (rows, cols) = (self.rows, self.cols);
        match out_major {
            true => (transpose(&self.into_f32(), rows, cols), [cols, rows]),
            false => (self.into_f32(), [rows, cols]),
        }
    }

    /// Matrices stacked by rows (transformers' q, k and v into one `[3w, w]`): codes stay codes
    /// where every part has one scale per row.
    fn stack(parts: Vec<Stored>) -> Stored {
        let cols = parts[0].cols;
        let rows = parts.iter().map(|p| p.rows).sum();
        let all_rows = parts.iter().all(|p| matches!(p.values, StoredValues::Q8 { per_row: true, .. }));
        let values = if all_rows {
            let (mut codes, mut scales) = (Vec::new(), Vec::new());
            for p in parts {
                if let StoredValues::Q8 { codes: c, scales: s, .. } = p.values {
                    codes.extend(c);
                    scales.extend(s);
                }
            }
            StoredValues::Q8 { codes, scales, per_row: true }
        } else {
            StoredValues::F32(parts.into_iter().flat_map(Stored::into_f32).collect())
        };
        Stored { rows, cols, values }
    }
}

/// `[rows, cols]` row-major → `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// Where loaded tensors go: host vectors (the CPU towers, [`crate::cpu_towers`]), device
/// buffers (the GPU towers, [`crate::device_towers`]) or burn parameters (training and the
/// benchmark's rows, [`crate::model`]). The loader below knows the checkpoint names of both
/// layouts; a target only decides how a tensor is stored. Tensors arrive one
/// at a time, so a target can move each to the device and drop it.
pub(crate) trait Target {
    type Matrix;
    type Vector;
    /// A matrix multiplied by the activations, `W: [k, n]` in `x · W` orientation, given as
    /// stored: `[n, k]` when `out_major` (torch's Linear), else `[k, n]`. Kept in the compute
    /// type.
    fn matrix(&self, name: &str, w: Stored, out_major: bool) -> Result<Self::Matrix, ClipError>;
    /// An embedding table looked up by row (the token table), `[rows, cols]`.
    fn table(&self, name: &str, values: Stored) -> Result<Self::Matrix, ClipError> {
        self.matrix(name, values, false)
    }
    /// An embedding added to the activations (positions), `[rows, cols]`.
    fn added(&self, name: &str, values: Vec<f32>, shape: [usize; 2]) -> Result<Self::Matrix, ClipError>;
    /// A bias or the class embedding.
    fn vector(&self, name: &str, values: Vec<f32>) -> Result<Self::Vector, ClipError>;
    /// LayerNorm parameters: always f32, the statistics are computed in f32 in any precision.
    fn norm(&self, name: &str, values: Vec<f32>) -> Result<Self::Vector, ClipError>;
}

/// `x · W + b` with `W` stored `[in, out]`.
pub struct LinearParts<M, V> {
    pub weight: M,
    pub bias: Option<V>,
}

pub struct NormParts<V> {
    pub gamma: V,
    pub beta: V,
    pub eps: f64,
}

/// One pre-LN encoder layer, q, k and v fused into one `[w, 3w]` projection.
pub struct LayerParts<M, V> {
    pub ln1: NormParts<V>,
    pub qkv: LinearParts<M, V>,
    pub out: LinearParts<M, V>,
    pub ln2: NormParts<V>,
    pub fc1: LinearParts<M, V>,
    pub fc2: LinearParts<M, V>,
}

pub struct TextParts<M, V> {
    /// `[vocab, width]`
    pub token_embedding: M,
    /// `[context, width]`
    pub position_embedding: M,
    pub layers: Vec<LayerParts<M, V>>,
    pub final_norm: NormParts<V>,
    /// `[width, projection]`
    pub projection: M,
}

pub struct VisionParts<M, V> {
    /// The patch convolution as `[3·patch², width]` over channel-major patches.
    pub patch_embedding: M,
    pub class_embedding: V,
    /// `[patches + 1, width]`
    pub position_embedding: M,
    pub pre_norm: NormParts<V>,
    pub layers: Vec<LayerParts<M, V>>,
    pub post_norm: NormParts<V>,
    /// `[width, projection]`
    pub projection: M,
}

/// Reads both towers' tensors from a checkpoint into a [`Target`].
pub(crate) struct Loader<'c, S, T> {
    pub ckpt: &'c Checkpoint<S>,
    pub target: &'c T,
}

type Linear<T> = LinearParts<<T as Target>::Matrix, <T as Target>::Vector>;
type Layer<T> = LayerParts<<T as Target>::Matrix, <T as Target>::Vector>;

impl<S: Source, T: Target> Loader<'_, S, T> {
    async fn vector(&self, name: &str, len: usize) -> Result<T::Vector, ClipError> {
        self.target.vector(name, self.ckpt.read(name, &[len]).await?)
    }

    /// A `[out, in]` torch weight, multiplied as `[in, out]`.
    async fn weight_t(&self, name: &str, out_dim: usize, in_dim: usize) -> Result<T::Matrix, ClipError> {
        self.target.matrix(name, self.ckpt.read_matrix(name, &[out_dim, in_dim]).await?, true)
    }

    /// A weight stored `[in, out]` already (open_clip's projections).
    async fn weight(&self, name: &str, in_dim: usize, out_dim: usize) -> Result<T::Matrix, ClipError> {
        self.target.matrix(name, self.ckpt.read_matrix(name, &[in_dim, out_dim]).await?, false)
    }

    async fn linear(&self, prefix: &str, out_dim: usize, in_dim: usize) -> Result<Linear<T>, ClipError> {
        Ok(LinearParts {
            weight: self.weight_t(&format!("{prefix}.weight"), out_dim, in_dim).await?,
            bias: Some(self.vector(&format!("{prefix}.bias"), out_dim).await?),
        })
    }

    async fn layer_norm(&self, prefix: &str, width: usize, eps: f64) -> Result<NormParts<T::Vector>, ClipError> {
        let (g, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        let gamma = self.target.norm(&g, self.ckpt.read(&g, &[width]).await?)?;
        let beta = self.target.norm(&b, self.ckpt.read(&b, &[width]).await?)?;
        Ok(NormParts { gamma, beta, eps })
    }

    /// transformers: separate q/k/v projections, fused here into one `[w, 3w]` matrix.
    async fn hf_qkv(&self, prefix: &str, w: usize) -> Result<Linear<T>, ClipError> {
        let mut weight = Vec::with_capacity(3);
        let mut bias = Vec::with_capacity(3 * w);
        for part in ["q_proj", "k_proj", "v_proj"] {
            weight.push(self.ckpt.read_matrix(&format!("{prefix}.{part}.weight"), &[w, w]).await?);
            bias.extend(self.ckpt.read(&format!("{prefix}.{part}.bias"), &[w]).await?);
        }
        let name = format!("{prefix}.qkv");
        Ok(LinearParts {
            weight: self.target.matrix(&name, Stored::stack(weight), true)?,
            bias: Some(self.target.vector(&name, bias)?),
        })
    }

    /// open_clip (torch.nn.MultiheadAttention): q, k, v already stacked in `in_proj`.
    async fn open_clip_qkv(&self, prefix: &str, w: usize) -> Result<Linear<T>, ClipError> {
        Ok(LinearParts {
            weight: self.weight_t(&format!("{prefix}.in_proj_weight"), 3 * w, w).await?,
            bias: Some(self.vector(&format!("{prefix}.in_proj_bias"), 3 * w).await?),
        })
    }

    async fn layers(&self, layout: Layout, prefix: &str, tower: &Tower) -> Result<Vec<Layer<T>>, ClipError> {
        let (w, m, eps) = (tower.width, tower.mlp, tower.eps);
        let mut layers = Vec::with_capacity(tower.layers);
        for i in 0..tower.layers {
            layers.push(match layout {
                Layout::HuggingFace => {
                    let p = format!("{prefix}.encoder.layers.{i}");
                    LayerParts {
                        ln1: self.layer_norm(&format!("{p}.layer_norm1"), w, eps).await?,
                        qkv: self.hf_qkv(&format!("{p}.self_attn"), w).await?,
                        out: self.linear(&format!("{p}.self_attn.out_proj"), w, w).await?,
                        ln2: self.layer_norm(&format!("{p}.layer_norm2"), w, eps).await?,
                        fc1: self.linear(&format!("{p}.mlp.fc1"), m, w).await?,
                        fc2: self.linear(&format!("{p}.mlp.fc2"), w, m).await?,
                    }
                }
                Layout::OpenClip => {
                    let p = format!("{prefix}transformer.resblocks.{i}");
                    LayerParts {
                        ln1: self.layer_norm(&format!("{p}.ln_1"), w, eps).await?,
                        qkv: self.open_clip_qkv(&format!("{p}.attn"), w).await?,
                        out: self.linear(&format!("{p}.attn.out_proj"), w, w).await?,
                        ln2: self.layer_norm(&format!("{p}.ln_2"), w, eps).await?,
                        fc1: self.linear(&format!("{p}.mlp.c_fc"), m, w).await?,
                        fc2: self.linear(&format!("{p}.mlp.c_proj"), w, m).await?,
                    }
                }
            });
        }
        Ok(layers)
    }

    pub async fn text(&self, config: &ClipConfig) -> Result<TextParts<T::Matrix, T::Vector>, ClipError> {
        let t = &config.text;
        let (w, p) = (t.tower.width, config.projection);
        let (token, position, final_norm, prefix) = match config.layout {
            Layout::HuggingFace => (
                "text_model.embeddings.token_embedding.weight",
                "text_model.embeddings.position_embedding.weight",
                "text_model.final_layer_norm",
                "text_model",
            ),
            Layout::OpenClip => ("token_embedding.weight", "positional_embedding", "ln_final", ""),
        };
        Ok(TextParts {
            token_embedding: self.target.table(token, self.ckpt.read_matrix(token, &[t.vocab, w]).await?)?,
            position_embedding: self.target.added(
                position,
                self.ckpt.read(position, &[t.context, w]).await?,
                [t.context, w],
            )?,
            layers: self.layers(config.layout, prefix, &t.tower).await?,
            final_norm: self.layer_norm(final_norm, w, t.tower.eps).await?,
            projection: match config.layout {
                Layout::HuggingFace => self.weight_t("text_projection.weight", p, w).await?,
                // Stored [width, embed]: already the `x · W` orientation.
                Layout::OpenClip => self.weight("text_projection", w, p).await?,
            },
        })
    }

    pub async fn vision(&self, config: &ClipConfig) -> Result<VisionParts<T::Matrix, T::Vector>, ClipError> {
        let v = &config.vision;
        let (w, p, ps) = (v.tower.width, config.projection, v.patch_size);
        let tokens = v.patches() + 1;
        let (conv, class, position, pre, post) = match config.layout {
            Layout::HuggingFace => (
                "vision_model.embeddings.patch_embedding.weight",
                "vision_model.embeddings.class_embedding",
                "vision_model.embeddings.position_embedding.weight",
                "vision_model.pre_layrnorm",
                "vision_model.post_layernorm",
            ),
            Layout::OpenClip => (
                "visual.conv1.weight",
                "visual.class_embedding",
                "visual.positional_embedding",
                "visual.ln_pre",
                "visual.ln_post",
            ),
        };
        // The convolution [width, 3, p, p] is a [width, 3·p²] matrix over channel-major patches.
        let patch_embedding = self.target.matrix(conv, self.ckpt.read_matrix(conv, &[w, 3, ps, ps]).await?, true)?;
        let (layers, projection) = match config.layout {
            Layout::HuggingFace => (
                self.layers(Layout::HuggingFace, "vision_model", &v.tower).await?,
                self.weight_t("visual_projection.weight", p, w).await?,
            ),
            Layout::OpenClip => {
                (self.layers(Layout::OpenClip, "visual.", &v.tower).await?, self.weight("visual.proj", w, p).await?)
            }
        };
        Ok(VisionParts {
            patch_embedding,
            class_embedding: self.vector(class, w).await?,
            position_embedding: self.target.added(
                position,
                self.ckpt.read(position, &[tokens, w]).await?,
                [tokens, w],
            )?,
            pre_norm: self.layer_norm(pre, w, v.tower.eps).await?,
            layers,
            post_norm: self.layer_norm(post, w, v.tower.eps).await?,
            projection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::safetensors_f32;

    #[test]
    fn the_f16_range_scan_names_the_tensor_that_would_overflow() {
        let fits = safetensors_f32(&[("a".into(), vec![2], vec![1.0, -65504.0])]).expect("serialize");
        let too_big =
            safetensors_f32(&[("a".into(), vec![1], vec![1.0]), ("b.weight".into(), vec![2], vec![3.0, 1.0e6])])
                .expect("serialize");
        assert_eq!(ready(Checkpoint::parse("fits", &fits).expect("parse").f16_overflow()).unwrap(), None);
        let ckpt = Checkpoint::parse("too_big", &too_big).expect("parse");
        assert_eq!(ready(ckpt.f16_overflow()).unwrap().as_deref(), Some("b.weight"));
        assert!(!ckpt.stored_half());
    }
}
