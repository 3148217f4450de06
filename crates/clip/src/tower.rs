//! The CLIP towers' program, written once: token or patch embeddings, the pre-LN encoder
//! layers (LayerNorm → fused q/k/v product → attention → output product with the residual
//! added → LayerNorm → MLP product with the activation fused → MLP product with the residual
//! added), pooling inside the final LayerNorm, and the projection. It runs over
//! [`TowerOps`], which each runner implements: the GPU runner records prefscope-gpu's kernels
//! into one pass (`device_towers.rs`), the CPU runner calls the fused CPU kernels at once
//! (`cpu_towers.rs`). A new activation, a layer variant or a weight format is a change here
//! and in the operations, not in every runner.

use prefscope_core::scoring::transformer::Epilogue;

use crate::config::{Activation, ClipConfig, Tower};
use crate::error::ClipError;
use crate::weights::{LayerParts, NormParts, TextParts, VisionParts};

/// The operations a tower is made of, over one runner's weights and activations.
#[allow(clippy::too_many_arguments)]
pub(crate) trait TowerOps {
    /// A matrix multiplied by the activations (`[in, out]`), or an embedding table.
    type Matrix;
    /// A bias, a LayerNorm parameter or the class embedding (always f32).
    type Vector;
    /// An activation buffer of f32 values.
    type Act;
    /// Row indices: token ids, or the rows pooled.
    type Ids;

    fn ids(&mut self, ids: &[u32]) -> Result<Self::Ids, ClipError>;
    /// An activation buffer of `len` values (`what` names it in errors).
    fn zeros(&mut self, what: &'static str, len: usize) -> Result<Self::Act, ClipError>;
    /// `out = x · w + b`, then the epilogue (an activation, or `out +=` for the residual).
    fn linear(
        &mut self,
        x: &Self::Act,
        rows: usize,
        k: usize,
        w: &Self::Matrix,
        n: usize,
        bias: Option<&Self::Vector>,
        epilogue: Epilogue,
        out: &mut Self::Act,
    ) -> Result<(), ClipError>;
    /// LayerNorm of `rows` rows of `x`, or of the rows `gather` names (pooling).
    fn layer_norm(
        &mut self,
        x: &Self::Act,
        width: usize,
        rows: usize,
        gather: Option<&Self::Ids>,
        norm: &NormParts<Self::Vector>,
        out: &mut Self::Act,
    ) -> Result<(), ClipError>;
    /// Multi-head attention over `[batch·tokens, 3·width]` rows of q, k and v side by side.
    fn attention(
        &mut self,
        qkv: &Self::Act,
        batch: usize,
        tokens: usize,
        heads: usize,
        head_dim: usize,
        causal: bool,
        out: &mut Self::Act,
    ) -> Result<(), ClipError>;
    /// Token embeddings plus position embeddings of `tokens` ids per sequence.
    fn embed_tokens(
        &mut self,
        ids: &Self::Ids,
        table: &Self::Matrix,
        positions: &Self::Matrix,
        width: usize,
        tokens: usize,
        out: &mut Self::Act,
    ) -> Result<(), ClipError>;
    /// Patches of `[batch, 3, size, size]` pixels as channel-major rows (a new buffer: the
    /// widest of a small model's activations, allocated once where it is written).
    fn im2col(&mut self, pixels: &Self::Act, batch: usize, size: usize, patch: usize) -> Result<Self::Act, ClipError>;
    /// The class token before each image's patch embeddings, plus position embeddings.
    fn vision_tokens(
        &mut self,
        patches: &Self::Act,
        class: &Self::Vector,
        positions: &Self::Matrix,
        batch: usize,
        tokens: usize,
        width: usize,
        out: &mut Self::Act,
    ) -> Result<(), ClipError>;
}

/// Activation buffers for `batch·tokens` token rows of one tower, reused across layers.
pub(crate) struct Scratch<A> {
    /// Rows the buffers hold.
    pub rows: usize,
    /// The residual stream.
    pub x: A,
    /// LayerNorm outputs (and the vision tokens before the first LayerNorm).
    pub h: A,
    pub qkv: A,
    pub context: A,
    pub mlp: A,
}

impl<A> Scratch<A> {
    pub fn new<O: TowerOps<Act = A>>(ops: &mut O, tower: &Tower, rows: usize) -> Result<Self, ClipError> {
        let w = tower.width;
        Ok(Scratch {
            rows,
            x: ops.zeros("residual stream", rows * w)?,
            h: ops.zeros("normalised", rows * w)?,
            qkv: ops.zeros("qkv", rows * 3 * w)?,
            context: ops.zeros("attention context", rows * w)?,
            mlp: ops.zeros("mlp hidden", rows * tower.mlp)?,
        })
    }
}

/// The encoder layers over the residual stream `s.x` of `batch` sequences of `tokens`.
fn layers<O: TowerOps>(
    ops: &mut O,
    layers: &[LayerParts<O::Matrix, O::Vector>],
    tower: &Tower,
    s: &mut Scratch<O::Act>,
    batch: usize,
    tokens: usize,
    causal: bool,
) -> Result<(), ClipError> {
    let (w, m, rows) = (tower.width, tower.mlp, batch * tokens);
    let act = match tower.activation {
        Activation::QuickGelu => Epilogue::QuickGelu,
        Activation::Gelu => Epilogue::Gelu,
    };
    for l in layers {
        ops.layer_norm(&s.x, w, rows, None, &l.ln1, &mut s.h)?;
        ops.linear(&s.h, rows, w, &l.qkv.weight, 3 * w, l.qkv.bias.as_ref(), Epilogue::None, &mut s.qkv)?;
        ops.attention(&s.qkv, batch, tokens, tower.heads, w / tower.heads, causal, &mut s.context)?;
        ops.linear(&s.context, rows, w, &l.out.weight, w, l.out.bias.as_ref(), Epilogue::Residual, &mut s.x)?;
        ops.layer_norm(&s.x, w, rows, None, &l.ln2, &mut s.h)?;
        ops.linear(&s.h, rows, w, &l.fc1.weight, m, l.fc1.bias.as_ref(), act, &mut s.mlp)?;
        ops.linear(&s.mlp, rows, m, &l.fc2.weight, w, l.fc2.bias.as_ref(), Epilogue::Residual, &mut s.x)?;
    }
    Ok(())
}

/// The final LayerNorm of the residual rows `pooled`, then the projection: `[pooled, projection]`
/// rows, not normalised.
fn project<O: TowerOps>(
    ops: &mut O,
    s: &Scratch<O::Act>,
    tower: &Tower,
    projection_width: usize,
    pooled: &[u32],
    norm: &NormParts<O::Vector>,
    projection: &O::Matrix,
) -> Result<O::Act, ClipError> {
    let (w, batch) = (tower.width, pooled.len());
    let index = ops.ids(pooled)?;
    let mut picked = ops.zeros("pooled", batch * w)?;
    ops.layer_norm(&s.x, w, batch, Some(&index), norm, &mut picked)?;
    let mut out = ops.zeros("projected", batch * projection_width)?;
    ops.linear(&picked, batch, w, projection, projection_width, None, Epilogue::None, &mut out)?;
    Ok(out)
}

/// The text tower over `ids` (`tokens` ids per text, in `s`'s rows); `pool[b]` is the position
/// pooled for text `b`. Returns the projected rows.
pub(crate) fn text<O: TowerOps>(
    ops: &mut O,
    t: &TextParts<O::Matrix, O::Vector>,
    config: &ClipConfig,
    s: &mut Scratch<O::Act>,
    ids: &O::Ids,
    tokens: usize,
    pool: &[usize],
) -> Result<O::Act, ClipError> {
    let tower = &config.text.tower;
    let batch = pool.len();
    ops.embed_tokens(ids, &t.token_embedding, &t.position_embedding, tower.width, tokens, &mut s.x)?;
    layers(ops, &t.layers, tower, s, batch, tokens, true)?;
    let pooled: Vec<u32> = pool.iter().enumerate().map(|(b, &p)| (b * tokens + p) as u32).collect();
    project(ops, s, tower, config.projection, &pooled, &t.final_norm, &t.projection)
}

/// The vision tower over preprocessed `pixels: [batch, 3, size, size]`. Returns the projected
/// rows.
pub(crate) fn vision<O: TowerOps>(
    ops: &mut O,
    vt: &VisionParts<O::Matrix, O::Vector>,
    config: &ClipConfig,
    s: &mut Scratch<O::Act>,
    pixels: &O::Act,
    batch: usize,
) -> Result<O::Act, ClipError> {
    let v = &config.vision;
    let (tower, size, patch, grid2) = (&v.tower, v.image_size, v.patch_size, v.patches());
    let (w, tokens, k) = (tower.width, grid2 + 1, 3 * patch * patch);
    let cols = ops.im2col(pixels, batch, size, patch)?;
    let mut patches = ops.zeros("patch embeddings", batch * grid2 * w)?;
    ops.linear(&cols, batch * grid2, k, &vt.patch_embedding, w, None, Epilogue::None, &mut patches)?;
    ops.vision_tokens(&patches, &vt.class_embedding, &vt.position_embedding, batch, tokens, w, &mut s.h)?;
    ops.layer_norm(&s.h, w, batch * tokens, None, &vt.pre_norm, &mut s.x)?;
    layers(ops, &vt.layers, tower, s, batch, tokens, false)?;
    let pooled: Vec<u32> = (0..batch).map(|b| (b * tokens) as u32).collect();
    project(ops, s, tower, config.projection, &pooled, &vt.post_norm, &vt.projection)
}
