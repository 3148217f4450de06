//! The CPU reference of the transformer steps the GPU towers run (docs/FORMULAS.md "CLIP towers"):
//! each function is the twin of one WGSL kernel in prefscope-gpu, with the same row-major
//! layouts, and accumulates in f64 so that a comparison measures the kernel's rounding.

/// What a matrix product applies to `x·W + b` before it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    None,
    /// `v·σ(1.702·v)` (OpenAI's CLIP weights).
    QuickGelu,
    /// Exact GELU `v·Φ(v)` (laion / open_clip ViT-H-14).
    Gelu,
    /// `y += v`: the residual stream `y` is the output buffer.
    Residual,
}

impl Epilogue {
    /// The code the kernels receive.
    pub fn code(self) -> u32 {
        match self {
            Epilogue::None => 0,
            Epilogue::QuickGelu => 1,
            Epilogue::Gelu => 2,
            Epilogue::Residual => 3,
        }
    }
}

pub fn quick_gelu(v: f64) -> f64 {
    v / (1.0 + (-1.702 * v).exp())
}

pub fn gelu(v: f64) -> f64 {
    0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2))
}

/// `y = epilogue(x·W + b)` with `x: [rows, k]`, `w: [k, n]` (`x·W` convention, as the towers
/// store their matrices), `bias: [n]`. For [`Epilogue::Residual`], `y` holds the residual on
/// entry and `x·W + b` is added to it; for the others `y` is overwritten.
#[allow(clippy::too_many_arguments)]
pub fn linear(
    x: &[f32],
    rows: usize,
    k: usize,
    w: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    y: &mut [f32],
) {
    assert_eq!(x.len(), rows * k, "x is rows × k");
    assert_eq!(w.len(), k * n, "w is k × n");
    assert_eq!(y.len(), rows * n, "y is rows × n");
    let mut acc = vec![0f64; n];
    for r in 0..rows {
        acc.iter_mut().enumerate().for_each(|(c, a)| *a = bias.map_or(0.0, |b| b[c] as f64));
        for (i, &xv) in x[r * k..(r + 1) * k].iter().enumerate() {
            let xv = xv as f64;
            for (a, &wv) in acc.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                *a += xv * wv as f64;
            }
        }
        for (out, &v) in y[r * n..(r + 1) * n].iter_mut().zip(&acc) {
            *out = match epilogue {
                Epilogue::None => v,
                Epilogue::QuickGelu => quick_gelu(v),
                Epilogue::Gelu => gelu(v),
                Epilogue::Residual => *out as f64 + v,
            } as f32;
        }
    }
}

/// LayerNorm over rows of `width`: `(x − mean) / sqrt(var + eps) · gamma + beta`, with the
/// biased variance as torch computes it. `rows` picks (gathers) the input rows; `None` is all.
pub fn layer_norm(x: &[f32], width: usize, rows: Option<&[u32]>, gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f32> {
    let all: Vec<u32> = (0..(x.len() / width.max(1)) as u32).collect();
    let rows = rows.unwrap_or(&all);
    let mut out = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        let row = &x[r as usize * width..(r as usize + 1) * width];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
        let inv = 1.0 / (var + eps).sqrt();
        out.extend(
            row.iter()
                .zip(gamma)
                .zip(beta)
                .map(|((&v, &g), &b)| ((v as f64 - mean) * inv * g as f64 + b as f64) as f32),
        );
    }
    out
}

/// Multi-head self-attention on fused projections: `qkv: [batch·tokens, 3·width]` holds q, k
/// and v side by side (head `h` at columns `h·d .. (h+1)·d` of each third). Returns the
/// context `[batch·tokens, width]` with heads side by side, before the output projection.
/// `causal` masks keys after the query (the text tower).
pub fn attention(qkv: &[f32], batch: usize, tokens: usize, heads: usize, head_dim: usize, causal: bool) -> Vec<f32> {
    let width = heads * head_dim;
    assert_eq!(qkv.len(), batch * tokens * 3 * width, "qkv is batch·tokens × 3·width");
    let scale = (head_dim as f64).powf(-0.5);
    let at = |b: usize, t: usize, part: usize, h: usize, d: usize| {
        qkv[(b * tokens + t) * 3 * width + part * width + h * head_dim + d] as f64
    };
    let mut out = vec![0f32; batch * tokens * width];
    let mut scores = vec![0f64; tokens];
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..tokens {
                let keys = if causal { i + 1 } else { tokens };
                for (j, s) in scores[..keys].iter_mut().enumerate() {
                    *s = (0..head_dim).map(|d| at(b, i, 0, h, d) * at(b, j, 1, h, d)).sum::<f64>() * scale;
                }
                let max = scores[..keys].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = scores[..keys]
                    .iter_mut()
                    .map(|s| {
                        *s = (*s - max).exp();
                        *s
                    })
                    .sum();
                for d in 0..head_dim {
                    let v: f64 = (0..keys).map(|j| scores[j] * at(b, j, 2, h, d)).sum();
                    out[(b * tokens + i) * width + h * head_dim + d] = (v / sum) as f32;
                }
            }
        }
    }
    out
}

/// Token plus position embeddings: `ids: [batch·tokens]` into `table: [vocab, width]`,
/// `positions: [context, width]` (the first `tokens` rows used). Ids past the table are the
/// caller's error to report; here they panic.
pub fn embed_tokens(table: &[f32], positions: &[f32], width: usize, ids: &[u32], tokens: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(ids.len() * width);
    for (i, &id) in ids.iter().enumerate() {
        let t = &table[id as usize * width..(id as usize + 1) * width];
        let p = &positions[(i % tokens) * width..(i % tokens + 1) * width];
        out.extend(t.iter().zip(p).map(|(a, b)| a + b));
    }
    out
}

/// Patches of `pixels: [batch, 3, size, size]` as rows `[batch·(size/patch)², 3·patch²]`,
/// row-major over the patch grid and channel-major inside a patch (the convolution weight's
/// order), so that the patch embedding is one matrix product.
pub fn im2col(pixels: &[f32], batch: usize, size: usize, patch: usize) -> Vec<f32> {
    let grid = size / patch;
    let mut out = Vec::with_capacity(batch * grid * grid * 3 * patch * patch);
    for b in 0..batch {
        for gy in 0..grid {
            for gx in 0..grid {
                for c in 0..3 {
                    for py in 0..patch {
                        let row = ((b * 3 + c) * size + gy * patch + py) * size + gx * patch;
                        out.extend_from_slice(&pixels[row..row + patch]);
                    }
                }
            }
        }
    }
    out
}

/// The vision tower's tokens: the class embedding, then each image's embedded patches, plus
/// the position embeddings (`patches: [batch·grid², width]`, `positions: [grid² + 1, width]`).
pub fn vision_tokens(patches: &[f32], class: &[f32], positions: &[f32], batch: usize, width: usize) -> Vec<f32> {
    let tokens = positions.len() / width;
    let mut out = Vec::with_capacity(batch * tokens * width);
    for b in 0..batch {
        for t in 0..tokens {
            let src = if t == 0 { class } else { &patches[(b * (tokens - 1) + t - 1) * width..][..width] };
            out.extend(src.iter().zip(&positions[t * width..(t + 1) * width]).map(|(a, p)| a + p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_at_known_points() {
        // Python's `0.5 * v * (1 + math.erf(v / math.sqrt(2)))` (the C library's erf).
        assert!((gelu(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((gelu(-3.0) - -0.004_049_694_094_890_31).abs() < 1e-15);
        assert!((quick_gelu(1.0) - 1.0 / (1.0 + (-1.702f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn layer_norm_of_a_small_row() {
        // mean 2, biased variance 2/3
        let y = layer_norm(&[1.0, 2.0, 3.0], 3, None, &[1.0, 1.0, 2.0], &[0.0, 0.5, 0.0], 0.0);
        let s = (1.5f64).sqrt() as f32;
        assert_eq!(y, vec![-s, 0.5, 2.0 * s]);
    }

    #[test]
    fn one_key_attends_to_itself_and_the_mask_hides_later_keys() {
        // One head of width 1, two tokens: q = k = [1, 2], v = [10, 20].
        let qkv = [1.0, 1.0, 10.0, 2.0, 2.0, 20.0];
        let causal = attention(&qkv, 1, 2, 1, 1, true);
        assert_eq!(causal[0], 10.0);
        let w = (2.0f64 * 2.0).exp() / ((2.0f64 * 1.0).exp() + (2.0f64 * 2.0).exp());
        assert!((causal[1] as f64 - (10.0 * (1.0 - w) + 20.0 * w)).abs() < 1e-5);
        let full = attention(&qkv, 1, 2, 1, 1, false);
        let w0 = (1.0f64 * 2.0).exp() / ((1.0f64).exp() + (2.0f64).exp());
        assert!((full[0] as f64 - (10.0 * (1.0 - w0) + 20.0 * w0)).abs() < 1e-5);
    }

    #[test]
    fn linear_with_bias_and_residual() {
        let x = [1.0, 2.0];
        let w = [1.0, 0.0, 3.0, 0.0, 1.0, -1.0]; // [2, 3]
        let mut y = vec![100.0; 3];
        linear(&x, 1, 2, &w, 3, Some(&[0.5, 0.5, 0.5]), Epilogue::Residual, &mut y);
        assert_eq!(y, vec![101.5, 102.5, 101.5]);
        linear(&x, 1, 2, &w, 3, None, Epilogue::None, &mut y);
        assert_eq!(y, vec![1.0, 2.0, 1.0]);
    }

    #[test]
    fn patches_follow_the_convolution_weight_order() {
        // One 4×4 image of 3 channels, patch 2: pixel value = c·100 + y·10 + x.
        let pixels: Vec<f32> =
            (0..3).flat_map(|c| (0..16).map(move |i| (c * 100 + (i / 4) * 10 + i % 4) as f32)).collect();
        let rows = im2col(&pixels, 1, 4, 2);
        assert_eq!(rows.len(), 4 * 12);
        // Patch (0, 1): x 2..4, y 0..2.
        assert_eq!(&rows[12..24], &[2., 3., 12., 13., 102., 103., 112., 113., 202., 203., 212., 213.]);
    }
}
