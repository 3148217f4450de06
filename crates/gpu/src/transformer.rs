//! The transformer kernels the CLIP towers run on: matrix products with fused epilogues,
//! LayerNorm (optionally gathering its rows), one attention kernel, token and patch
//! embeddings. Each is the twin of a function in `prefscope_core::scoring::transformer`.
//!
//! A tower's forward pass is recorded into one [`Pass`] (one command encoder, one submit) over
//! [`Tensor`]s that stay on the device; weights are uploaded once, in f32 or as packed f16.

use prefscope_core::scoring::preprocess::{bicubic_taps, check_rgba, Preset};
use prefscope_core::scoring::transformer::Epilogue;

use crate::kernel::{cast, groups_for, groups_per_item, shader, Scope, Shader};
use crate::params::{AttentionParams, EmbedParams, LayerNormParams, LinearParams, PreprocessParams, SimilarityParams};
use crate::{Gpu, GpuError};

const LINEAR_F32: Shader = shader!("linear_f32", ["weights_f32", "linear_params", "tile", "linear"]);
const LINEAR_F16: Shader = shader!("linear_f16", ["weights_f16", "linear_params", "tile", "linear"]);
const LINEAR4_F32: Shader = shader!("linear4_f32", ["weights4_f32", "linear_params", "linear4"]);
const LINEAR4_F16: Shader = shader!("linear4_f16", ["weights4_f16", "linear_params", "linear4"]);
const EMBED_F32: Shader = shader!("embed_f32", ["weights_f32", "embed"]);
const EMBED_F16: Shader = shader!("embed_f16", ["weights_f16", "embed"]);
const LAYER_NORM: Shader = shader!("layer_norm");
const ATTENTION: Shader = shader!("attention");
pub(crate) const PREPROCESS: Shader = shader!("preprocess");

/// Output tile edge of the matrix product: workgroup-tiled, and barrier-free.
const TILE: u32 = 64;
const DIRECT_TILE: u32 = 32;
/// Longest sequence the towers accept (the attention kernel streams keys, so this bounds only
/// the work of one invocation) and widest head it holds in registers.
pub const MAX_TOKENS: usize = 1024;
pub const MAX_HEAD_DIM: usize = 128;
/// Invocations per workgroup of the row-per-invocation kernels (attention, LayerNorm).
const ROWS_PER_GROUP: u64 = 64;

/// A tensor resident on the device: f32 values, or f16 values packed two to a word (weights
/// only). `len` counts values.
#[derive(Debug)]
pub struct Tensor {
    pub(crate) buffer: wgpu::Buffer,
    pub len: usize,
    pub half: bool,
}

impl Tensor {
    /// Bytes on the device.
    pub fn bytes(&self) -> u64 {
        self.buffer.size()
    }
}

/// f32 values as f16 packed two to a u32 (round to nearest even), low half first.
fn pack_f16(values: &[f32]) -> Vec<u32> {
    values
        .chunks(2)
        .map(|pair| {
            let lo = half::f16::from_f32(pair[0]).to_bits() as u32;
            let hi = pair.get(1).map_or(0, |&v| half::f16::from_f32(v).to_bits() as u32);
            lo | (hi << 16)
        })
        .collect()
}

impl Gpu {
    /// Uploads a weight tensor once, in f32 or as f16 (`half`). One past the binding limit
    /// is refused with its name.
    pub fn weight(&self, name: &str, values: &[f32], half: bool) -> Result<Tensor, GpuError> {
        let bytes = if half { values.len().div_ceil(2) as u64 * 4 } else { values.len() as u64 * 4 };
        self.check_fits(|| format!("tensor `{name}`"), bytes)?;
        let buffer = if half { self.upload(name, &pack_f16(values)) } else { self.upload(name, values) };
        Ok(Tensor { buffer, len: values.len(), half })
    }

    /// An f32 tensor on the device holding `values`.
    pub fn tensor(&self, label: &str, values: &[f32]) -> Result<Tensor, GpuError> {
        self.weight(label, values, false)
    }

    /// Token ids (u32) on the device.
    pub fn ids(&self, ids: &[u32]) -> Result<Tensor, GpuError> {
        self.check_fits(|| format!("{} token ids", ids.len()), ids.len() as u64 * 4)?;
        Ok(Tensor { buffer: self.upload("ids", ids), len: ids.len(), half: false })
    }

    /// A zeroed f32 tensor of `len` values (activations, reused across layers).
    pub fn zeros(&self, label: &str, len: usize) -> Result<Tensor, GpuError> {
        self.check_fits(|| format!("activation `{label}` of {len} values"), len as u64 * 4)?;
        Ok(Tensor { buffer: self.scratch(label, len as u64 * 4), len, half: false })
    }

    /// Starts recording a forward pass (or any sequence of the transformer kernels).
    pub fn pass(&self, op: &'static str) -> Result<Pass<'_>, GpuError> {
        Ok(Pass { scope: self.scope(op)?, encoder: self.encoder(), gpu: self, dummy: None })
    }

    /// The matrix-product kernel for a `k`-wide input and `n`-wide output: workgroup-tiled on
    /// GPUs; on software adapters barrier-free, reading four values at a time when both
    /// widths are multiples of 4.
    fn linear_kernel(&self, half: bool, k: usize, n: usize) -> (&'static Shader, &'static str, u32) {
        let pick = |f32: &'static Shader, f16: &'static Shader| if half { f16 } else { f32 };
        if !self.direct_matmul {
            (pick(&LINEAR_F32, &LINEAR_F16), "linear", TILE)
        } else if k.is_multiple_of(4) && n.is_multiple_of(4) {
            (pick(&LINEAR4_F32, &LINEAR4_F16), "linear4", DIRECT_TILE)
        } else {
            (pick(&LINEAR_F32, &LINEAR_F16), "linear_direct", DIRECT_TILE)
        }
    }

    /// Creates every pipeline the towers use now (model load) rather than at the first input:
    /// software adapters take seconds per pipeline, and browsers compile on every visit.
    /// Returns how many distinct pipelines the towers use.
    pub fn prepare_tower_pipelines(&self, half: bool) -> usize {
        let embed = if half { &EMBED_F16 } else { &EMBED_F32 };
        // Both product kernels a software adapter may pick (aligned and not).
        let (aligned, other) = (self.linear_kernel(half, 4, 4), self.linear_kernel(half, 1, 1));
        let mut pipelines: Vec<(&Shader, &'static str)> = vec![(aligned.0, aligned.1)];
        if other.1 != aligned.1 {
            pipelines.push((other.0, other.1));
        }
        pipelines.extend([
            (embed, "embed_tokens"),
            // Patch rows and vision tokens read f32 activations whatever the weights' type.
            (&EMBED_F32, "im2col"),
            (&EMBED_F32, "vision_tokens"),
            (&LAYER_NORM, "layer_norm"),
            (&ATTENTION, "attention"),
            (&crate::similarity::SHADER, "normalize_rows"),
            (&PREPROCESS, "horizontal"),
            (&PREPROCESS, "vertical"),
        ]);
        for &(shader, entry) in &pipelines {
            self.pipeline(shader, entry);
        }
        pipelines.len()
    }
}

/// Dispatches recorded into one command encoder, submitted once by [`Pass::finish`]. Every
/// method checks the sizes it is given, so a wrong call is an error, never a device fault.
pub struct Pass<'g> {
    gpu: &'g Gpu,
    encoder: wgpu::CommandEncoder,
    scope: Scope,
    /// A small buffer for optional bindings that an entry point declares but a call skips.
    dummy: Option<wgpu::Buffer>,
}

fn need(op: &str, what: &str, tensor: &Tensor, values: usize) -> Result<(), GpuError> {
    if tensor.len < values {
        return Err(GpuError::Shape(format!("{op}: {what} holds {} values, {values} needed", tensor.len)));
    }
    Ok(())
}

fn f32_only(op: &str, what: &str, tensor: &Tensor) -> Result<(), GpuError> {
    if tensor.half {
        return Err(GpuError::Shape(format!("{op}: {what} must be f32")));
    }
    Ok(())
}

impl<'g> Pass<'g> {
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    fn dummy(&mut self) -> wgpu::Buffer {
        // 16 bytes: the smallest binding of an array of vec4.
        self.dummy.get_or_insert_with(|| self.gpu.scratch("unused", 16)).clone()
    }

    /// `y = epilogue(x·W + b)`, `x: [rows, k]`, `w: [k, n]`, `bias: [n]` (twin of
    /// `prefscope_core::scoring::transformer::linear`). With [`Epilogue::Residual`] `y` is added to.
    #[allow(clippy::too_many_arguments)]
    pub fn linear(
        &mut self,
        x: &Tensor,
        rows: usize,
        k: usize,
        w: &Tensor,
        n: usize,
        bias: Option<&Tensor>,
        epilogue: Epilogue,
        y: &Tensor,
    ) -> Result<(), GpuError> {
        need("linear", "x", x, rows * k)?;
        need("linear", "the weight", w, k * n)?;
        need("linear", "y", y, rows * n)?;
        f32_only("linear", "x", x)?;
        f32_only("linear", "y", y)?;
        if let Some(b) = bias {
            need("linear", "the bias", b, n)?;
            f32_only("linear", "the bias", b)?;
        }
        if rows == 0 || n == 0 {
            return Ok(());
        }
        let (shader, entry, tile) = self.gpu.linear_kernel(w.half, k, n);
        let dummy = self.dummy();
        let params = LinearParams {
            rows: rows as u32,
            k: k as u32,
            n: n as u32,
            epilogue: epilogue.code(),
            has_bias: bias.is_some() as u32,
        };
        let b = bias.map_or(&dummy, |b| &b.buffer);
        let groups = [(n as u32).div_ceil(tile), (rows as u32).div_ceil(tile), 1];
        self.gpu.dispatch_at(
            &mut self.encoder,
            shader,
            entry,
            &params,
            &[(1, &x.buffer), (2, &w.buffer), (3, b), (4, &y.buffer)],
            groups,
        );
        Ok(())
    }

    /// LayerNorm of `rows` rows of `width` (twin of `prefscope_core::scoring::transformer::layer_norm`);
    /// `gather` picks each output row's input row.
    #[allow(clippy::too_many_arguments)]
    pub fn layer_norm(
        &mut self,
        x: &Tensor,
        width: usize,
        rows: usize,
        gather: Option<&Tensor>,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        y: &Tensor,
    ) -> Result<(), GpuError> {
        match gather {
            Some(index) => need("layer_norm", "the row index", index, rows)?,
            None => need("layer_norm", "x", x, rows * width)?,
        }
        for (what, t) in [("x", x), ("gamma", gamma), ("beta", beta), ("y", y)] {
            f32_only("layer_norm", what, t)?;
        }
        need("layer_norm", "gamma", gamma, width)?;
        need("layer_norm", "beta", beta, width)?;
        need("layer_norm", "y", y, rows * width)?;
        if rows == 0 {
            return Ok(());
        }
        let dummy = self.dummy();
        let params = LayerNormParams { rows: rows as u32, width: width as u32, gather: gather.is_some() as u32, eps };
        let index = gather.map_or(&dummy, |g| &g.buffer);
        self.gpu.dispatch(
            &mut self.encoder,
            &LAYER_NORM,
            "layer_norm",
            &params,
            &[&x.buffer, index, &gamma.buffer, &beta.buffer, &y.buffer],
            groups_per_item((rows as u64).div_ceil(ROWS_PER_GROUP)),
        );
        Ok(())
    }

    /// Self-attention on fused projections `qkv: [batch·tokens, 3·heads·head_dim]` into
    /// `out: [batch·tokens, heads·head_dim]` (twin of `prefscope_core::scoring::transformer::attention`).
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &mut self,
        qkv: &Tensor,
        batch: usize,
        tokens: usize,
        heads: usize,
        head_dim: usize,
        causal: bool,
        out: &Tensor,
    ) -> Result<(), GpuError> {
        if tokens > MAX_TOKENS || head_dim > MAX_HEAD_DIM {
            return Err(GpuError::Shape(format!(
                "attention over {tokens} tokens with heads of {head_dim}: the kernel holds at most \
                 {MAX_TOKENS} tokens and heads of {MAX_HEAD_DIM}"
            )));
        }
        let width = heads * head_dim;
        need("attention", "qkv", qkv, batch * tokens * 3 * width)?;
        need("attention", "out", out, batch * tokens * width)?;
        f32_only("attention", "qkv", qkv)?;
        let items = (batch * heads * tokens) as u64;
        if items == 0 {
            return Ok(());
        }
        let params = AttentionParams {
            batch: batch as u32,
            tokens: tokens as u32,
            heads: heads as u32,
            head_dim: head_dim as u32,
            causal: causal as u32,
            scale: (head_dim as f32).powf(-0.5),
        };
        self.gpu.dispatch(
            &mut self.encoder,
            &ATTENTION,
            "attention",
            &params,
            &[&qkv.buffer, &out.buffer],
            groups_per_item(items.div_ceil(ROWS_PER_GROUP)),
        );
        Ok(())
    }

    /// Token plus position embeddings for `ids` (`tokens` per sequence) into `out`.
    pub fn embed_tokens(
        &mut self,
        ids: &Tensor,
        table: &Tensor,
        positions: &Tensor,
        width: usize,
        tokens: usize,
        out: &Tensor,
    ) -> Result<(), GpuError> {
        let count = ids.len * width;
        need("embed_tokens", "the positions", positions, tokens * width)?;
        need("embed_tokens", "out", out, count)?;
        f32_only("embed_tokens", "the positions", positions)?;
        if count == 0 {
            return Ok(());
        }
        let shader = if table.half { &EMBED_F16 } else { &EMBED_F32 };
        let params =
            EmbedParams { count: count as u32, width: width as u32, tokens: tokens as u32, ..Default::default() };
        let bindings = [(1, &ids.buffer), (2, &table.buffer), (3, &positions.buffer), (4, &out.buffer)];
        self.gpu.dispatch_at(&mut self.encoder, shader, "embed_tokens", &params, &bindings, groups_for(count as u64));
        Ok(())
    }

    /// Patches of `pixels: [batch, 3, size, size]` as rows `[batch·grid², 3·patch²]`.
    pub fn im2col(
        &mut self,
        pixels: &Tensor,
        batch: usize,
        size: usize,
        patch: usize,
        out: &Tensor,
    ) -> Result<(), GpuError> {
        let grid = size / patch.max(1);
        let count = batch * grid * grid * 3 * patch * patch;
        need("im2col", "pixels", pixels, batch * 3 * size * size)?;
        need("im2col", "out", out, count)?;
        if count == 0 {
            return Ok(());
        }
        let params =
            EmbedParams { count: count as u32, size: size as u32, patch_size: patch as u32, ..Default::default() };
        let bindings = [(5, &pixels.buffer), (4, &out.buffer)];
        self.gpu.dispatch_at(&mut self.encoder, &EMBED_F32, "im2col", &params, &bindings, groups_for(count as u64));
        Ok(())
    }

    /// The class token before each image's embedded patches, plus positions `[tokens, width]`.
    #[allow(clippy::too_many_arguments)]
    pub fn vision_tokens(
        &mut self,
        patches: &Tensor,
        class: &Tensor,
        positions: &Tensor,
        batch: usize,
        tokens: usize,
        width: usize,
        out: &Tensor,
    ) -> Result<(), GpuError> {
        let count = batch * tokens * width;
        need("vision_tokens", "patches", patches, batch * tokens.saturating_sub(1) * width)?;
        need("vision_tokens", "the class embedding", class, width)?;
        need("vision_tokens", "the positions", positions, tokens * width)?;
        need("vision_tokens", "out", out, count)?;
        if count == 0 {
            return Ok(());
        }
        let params =
            EmbedParams { count: count as u32, width: width as u32, tokens: tokens as u32, ..Default::default() };
        let bindings = [(7, &patches.buffer), (6, &class.buffer), (3, &positions.buffer), (4, &out.buffer)];
        self.gpu.dispatch_at(
            &mut self.encoder,
            &EMBED_F32,
            "vision_tokens",
            &params,
            &bindings,
            groups_for(count as u64),
        );
        Ok(())
    }

    /// `out = x / ‖x‖` row by row (zero rows stay zero).
    pub fn normalize_rows(&mut self, x: &Tensor, rows: usize, width: usize, out: &Tensor) -> Result<(), GpuError> {
        need("normalize_rows", "x", x, rows * width)?;
        need("normalize_rows", "out", out, rows * width)?;
        if rows == 0 {
            return Ok(());
        }
        let dummy = self.dummy();
        let params = SimilarityParams { rows_a: rows as u32, rows_b: 0, dim: width as u32, clamp: 0, scale: 1.0 };
        self.gpu.dispatch(
            &mut self.encoder,
            &crate::similarity::SHADER,
            "normalize_rows",
            &params,
            &[&x.buffer, &dummy, &out.buffer],
            groups_per_item(rows as u64),
        );
        Ok(())
    }

    /// Preprocesses one RGBA8 image into `out` at value offset `base` (a batch of images is
    /// one buffer, so the pixels go to the vision tower without leaving the device). Returns
    /// the output's width and height.
    pub fn preprocess(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
        preset: &Preset,
        out: &Tensor,
        base: usize,
    ) -> Result<(u32, u32), GpuError> {
        check_rgba(rgba, width, height).map_err(|e| GpuError::Shape(e.to_string()))?;
        let plan = preset.plan(width, height);
        let (rw, rh) = plan.resized;
        let (ow, oh) = plan.out;
        let temp_bytes = height as u64 * rw as u64 * 4;
        for (what, bytes) in [("image", rgba.len() as u64), ("resized rows", temp_bytes)] {
            self.gpu.check_fits(|| format!("the {width}×{height} image's {what}"), bytes)?;
        }
        need("preprocess", "out", out, base + 3 * ow as usize * oh as usize)?;
        let gpu = self.gpu;
        let tx = bicubic_taps(width, rw);
        let ty = bicubic_taps(height, rh);
        let src = gpu.upload("rgba", rgba);
        let bx = gpu.upload("bounds x", &tx.bounds);
        let wx = gpu.upload("weights x", &tx.weights);
        let by = gpu.upload("bounds y", &ty.bounds);
        let wy = gpu.upload("weights y", &ty.weights);
        let temp = gpu.scratch("resized rows", temp_bytes);
        let [m0, m1, m2] = preset.mean;
        let [s0, s1, s2] = preset.std;
        let params = PreprocessParams {
            in_w: width,
            in_h: height,
            rw,
            rh,
            kx: tx.ksize as u32,
            ky: ty.ksize as u32,
            ow,
            oh,
            off_x: plan.offset.0 as i32,
            off_y: plan.offset.1 as i32,
            base: base as u32,
            _pad: 0,
            mean: [m0, m1, m2, 0.0],
            stdev: [s0, s1, s2, 1.0],
        };
        let h = [(1, &src), (2, &bx), (3, &wx), (4, &temp)];
        gpu.dispatch_at(
            &mut self.encoder,
            &PREPROCESS,
            "horizontal",
            &params,
            &h,
            groups_for(height as u64 * rw as u64),
        );
        let v = [(4, &temp), (5, &by), (6, &wy), (7, &out.buffer)];
        gpu.dispatch_at(&mut self.encoder, &PREPROCESS, "vertical", &params, &v, groups_for(ow as u64 * oh as u64));
        Ok((ow, oh))
    }

    /// Submits every recorded dispatch and reads back the first `values` of each tensor.
    pub async fn finish(self, reads: &[(&Tensor, usize)]) -> Result<Vec<Vec<f32>>, GpuError> {
        for &(t, values) in reads {
            need("read back", "the tensor", t, values)?;
            f32_only("read back", "the tensor", t)?;
        }
        let reads: Vec<(&wgpu::Buffer, u64)> = reads.iter().map(|(t, n)| (&t.buffer, *n as u64 * 4)).collect();
        let bytes = self.gpu.finish(self.scope, self.encoder, &reads).await?;
        Ok(bytes.iter().map(|b| cast(b)).collect())
    }
}
