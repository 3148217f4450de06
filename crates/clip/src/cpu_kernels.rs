//! The CPU towers' steps: the same set as prefscope-gpu's transformer kernels
//! (docs/FORMULAS.md "CLIP towers"), fused the same way, over f32 slices. Matrix products go
//! to the `gemm` crate (the kernel burn-flex itself calls, with wasm simd128 microkernels);
//! everything else is one pass written so that LLVM vectorises it. Each step's f64 twin in
//! `prefscope_core::scoring::transformer` is what the tests compare it with.

use prefscope_core::scoring::transformer::Epilogue;

/// Threads for one matrix product: every core natively, one in wasm (the page splits batches
/// across Web Workers instead).
fn parallelism() -> gemm::Parallelism {
    #[cfg(not(target_arch = "wasm32"))]
    {
        gemm::Parallelism::Rayon(0)
    }
    #[cfg(target_arch = "wasm32")]
    {
        gemm::Parallelism::None
    }
}

/// A strided matrix view: element `(i, j)` is `data[offset + i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct View {
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl View {
    fn dense(rows: usize, cols: usize) -> Self {
        View { offset: 0, rows, cols, rs: cols, cs: 1 }
    }

    /// One past the last element read.
    fn end(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            self.offset
        } else {
            self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

/// `y = beta·(a·b) + (y if accumulate)`, bounds-checked, so that the one `unsafe` call
/// below only ever sees views inside their slices.
#[allow(clippy::too_many_arguments)]
fn gemm(a: &[f32], av: View, b: &[f32], bv: View, y: &mut [f32], yv: View, beta: f32, accumulate: bool) {
    assert!(av.cols == bv.rows && av.rows == yv.rows && bv.cols == yv.cols, "matrix product shapes");
    assert!(av.end() <= a.len() && bv.end() <= b.len() && yv.end() <= y.len(), "matrix product bounds");
    // SAFETY: the three views were checked to lie inside their slices; `y` is borrowed
    // mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            yv.rows,
            yv.cols,
            av.cols,
            y.as_mut_ptr().add(yv.offset),
            yv.cs as isize,
            yv.rs as isize,
            accumulate,
            a.as_ptr().add(av.offset),
            av.cs as isize,
            av.rs as isize,
            b.as_ptr().add(bv.offset),
            bv.cs as isize,
            bv.rs as isize,
            1.0,
            beta,
            false,
            false,
            false,
            parallelism(),
        )
    }
}

/// `y = epilogue(x·W + b)`, `x: [rows, k]`, `w: [k, n]`; for [`Epilogue::Residual`] `y` holds
/// the residual stream and `x·W + b` is added to it.
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
    let y = &mut y[..rows * n];
    start(y, n, bias, epilogue);
    accumulate(x, rows, k, w, n, 0, y, n);
    finish(y, epilogue);
}

/// The first half of a product's epilogue, before the sums are added to `y` (`[rows, n]`):
/// the bias, added to the residual stream or written over `y`.
pub fn start(y: &mut [f32], n: usize, bias: Option<&[f32]>, epilogue: Epilogue) {
    match (epilogue, bias) {
        (Epilogue::Residual, Some(bias)) => y.chunks_exact_mut(n).for_each(|row| add(row, bias)),
        (Epilogue::Residual, None) => {}
        (_, Some(bias)) => y.chunks_exact_mut(n).for_each(|row| row.copy_from_slice(bias)),
        (_, None) => y.fill(0.0),
    }
}

/// `y[:, col..col + cols] += x · w` with `x: [rows, k]`, `w: [k, cols]` dense and `y`'s rows
/// `n` wide: a column panel of a product (the f16 weights are widened a panel at a time).
#[allow(clippy::too_many_arguments)]
pub fn accumulate(x: &[f32], rows: usize, k: usize, w: &[f32], cols: usize, col: usize, y: &mut [f32], n: usize) {
    let yv = View { offset: col, rows, cols, rs: n, cs: 1 };
    gemm(x, View::dense(rows, k), w, View::dense(k, cols), y, yv, 1.0, true);
}

/// The second half: the activation, over the finished sums.
pub fn finish(y: &mut [f32], epilogue: Epilogue) {
    match epilogue {
        Epilogue::QuickGelu => y.iter_mut().for_each(|v| *v /= 1.0 + exp(-1.702 * *v)),
        Epilogue::Gelu => {
            y.iter_mut().for_each(|v| *v *= 0.5 * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2)))
        }
        Epilogue::None | Epilogue::Residual => {}
    }
}

fn add(row: &mut [f32], bias: &[f32]) {
    row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
}

/// A sum in eight lanes, so that it vectorises (a sequential float sum cannot be reordered).
fn sum(values: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0f32; 8];
    for (i, v) in values.enumerate() {
        lanes[i % 8] += v;
    }
    lanes.iter().sum()
}

/// LayerNorm of the rows of `x` (width `width`) picked by `rows` (all when `None`) into `out`,
/// with the biased variance as torch computes it.
pub fn layer_norm(
    x: &[f32],
    width: usize,
    rows: Option<&[u32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    let count = rows.map_or(x.len() / width, <[u32]>::len);
    for (i, y) in out[..count * width].chunks_exact_mut(width).enumerate() {
        let r = rows.map_or(i, |rows| rows[i] as usize);
        let row = &x[r * width..(r + 1) * width];
        let mean = sum(row.iter().copied()) / width as f32;
        let var = sum(row.iter().map(|v| (v - mean) * (v - mean))) / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (((y, &v), &g), &b) in y.iter_mut().zip(row).zip(gamma).zip(beta) {
            *y = (v - mean) * inv * g + b;
        }
    }
}

/// Multi-head self-attention on the fused projections `qkv: [batch·tokens, 3·width]` into
/// `out: [batch·tokens, width]`, heads side by side; `causal` masks later keys. Both products
/// read q, k and v in place through strides; `scores` is `tokens²` of scratch.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    qkv: &[f32],
    batch: usize,
    tokens: usize,
    heads: usize,
    head_dim: usize,
    causal: bool,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let width = heads * head_dim;
    let scale = (head_dim as f32).powf(-0.5);
    let scores = &mut scores[..tokens * tokens];
    for b in 0..batch {
        for h in 0..heads {
            let base = b * tokens * 3 * width + h * head_dim;
            let q = View { offset: base, rows: tokens, cols: head_dim, rs: 3 * width, cs: 1 };
            // kᵀ: element (d, j) is key j's component d.
            let kt = View { offset: base + width, rows: head_dim, cols: tokens, rs: 1, cs: 3 * width };
            gemm(qkv, q, qkv, kt, scores, View::dense(tokens, tokens), scale, false);
            for (i, row) in scores.chunks_exact_mut(tokens).enumerate() {
                let keys = if causal { i + 1 } else { tokens };
                let max = row[..keys].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                row[..keys].iter_mut().for_each(|s| *s = exp(*s - max));
                let inv = 1.0 / sum(row[..keys].iter().copied());
                row[..keys].iter_mut().for_each(|s| *s *= inv);
                row[keys..].fill(0.0);
            }
            let v = View { offset: base + 2 * width, rows: tokens, cols: head_dim, rs: 3 * width, cs: 1 };
            let y = View { offset: b * tokens * width + h * head_dim, rows: tokens, cols: head_dim, rs: width, cs: 1 };
            gemm(scores, View::dense(tokens, tokens), qkv, v, out, y, 1.0, false);
        }
    }
}

/// `e^x` in f32 within one ulp (Cody–Waite reduction, the degree-6 polynomial of Cephes'
/// `expf`), branch-free so that a loop over it vectorises; libm's `expf` is a scalar call per
/// element in wasm and dominated the activations.
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prefscope_core::scoring::transformer as twin;

    /// Deterministic values in [-2, 2).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 22) as f32 - 2.0
            })
            .collect()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn exp_is_within_an_ulp_of_f64_exp_over_the_whole_range() {
        let mut worst = 0f64;
        for i in 0..200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            worst = worst.max(((exp(x) as f64 - want) / want).abs());
        }
        assert!(worst < f32::EPSILON as f64, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1000.0), exp(-87.0));
    }

    #[test]
    fn linear_matches_its_twin_for_every_epilogue() {
        let (rows, k, n) = (7, 33, 19);
        let (x, w, bias) = (values(rows * k, 1), values(k * n, 2), values(n, 3));
        for epilogue in [Epilogue::None, Epilogue::QuickGelu, Epilogue::Gelu, Epilogue::Residual] {
            for bias in [None, Some(&bias[..])] {
                let start = values(rows * n, 4);
                let (mut got, mut want) = (start.clone(), start);
                linear(&x, rows, k, &w, n, bias, epilogue, &mut got);
                twin::linear(&x, rows, k, &w, n, bias, epilogue, &mut want);
                assert!(max_diff(&got, &want) < 2e-5, "{epilogue:?}, bias {}", bias.is_some());
            }
        }
    }

    #[test]
    fn layer_norm_matches_its_twin_with_and_without_a_gather() {
        let (width, rows) = (37, 5);
        let (x, gamma, beta) = (values(width * rows, 5), values(width, 6), values(width, 7));
        for picked in [None, Some(&[4u32, 0, 2][..])] {
            let want = twin::layer_norm(&x, width, picked, &gamma, &beta, 1e-5);
            let mut got = vec![f32::NAN; want.len()];
            layer_norm(&x, width, picked, &gamma, &beta, 1e-5, &mut got);
            assert!(max_diff(&got, &want) < 1e-5);
        }
    }

    #[test]
    fn attention_matches_its_twin_masked_and_not() {
        let (batch, tokens, heads, head_dim) = (2, 9, 3, 4);
        let qkv = values(batch * tokens * 3 * heads * head_dim, 8);
        for causal in [false, true] {
            let want = twin::attention(&qkv, batch, tokens, heads, head_dim, causal);
            let mut got = vec![f32::NAN; want.len()];
            let mut scores = vec![0.0; tokens * tokens];
            attention(&qkv, batch, tokens, heads, head_dim, causal, &mut scores, &mut got);
            assert!(max_diff(&got, &want) < 1e-5, "causal {causal}");
        }
    }
}
