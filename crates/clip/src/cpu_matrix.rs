//! The CPU towers' matrices in the dtype they are kept in (f32, f16 or int8), with the matrix
//! product and the table lookup over each. The bias, the residual and the activation are the
//! same f32 epilogue whatever the weights (`cpu_kernels::{start, finish}`).

use half::f16;
use prefscope_core::scoring::transformer::Epilogue;

use crate::cpu_kernels::{accumulate, finish, start};
use crate::dtype::Dtype;
use crate::qgemm::{self, Isa, PackedQ8, QuantRows, MR, NR};
use crate::weights::{Stored, StoredValues};

/// Columns of f16 weights widened at a time: a `[k, 256]` f32 panel (1.3 MB at ViT-H's widest
/// `k`) instead of the whole matrix.
const F16_PANEL: usize = 256;

/// A product's weights `[k, n]` (`x · W` orientation) or an embedding table `[rows, width]`.
pub enum Matrix {
    F32(Vec<f32>),
    /// Half the memory; widened to f32 a panel of columns at a time inside the product.
    F16(Vec<f16>),
    /// int8 per output column, packed for the microkernels (`qgemm.rs`).
    Q8(PackedQ8),
    /// An embedding table in int8, one scale per row: looked up, never multiplied.
    Q8Rows {
        codes: Vec<i8>,
        scales: Vec<f32>,
        width: usize,
    },
}

impl Matrix {
    /// Product weights `values: [k, n]` kept in `dtype`.
    pub fn weights(values: Vec<f32>, [k, n]: [usize; 2], dtype: Dtype) -> Self {
        match dtype {
            Dtype::F32 => Matrix::F32(values),
            Dtype::F16 => Matrix::F16(values.iter().map(|&v| f16::from_f32(v)).collect()),
            Dtype::Q8 => Matrix::Q8(PackedQ8::quantize(&values, k, n, false)),
        }
    }

    /// Product weights `W: [k, n]` as the checkpoint stores them (`[n, k]` when `out_major`),
    /// kept in `dtype`. For int8, codes whose scales run along the output axis are packed as
    /// they are, and f32 weights are quantized in their stored orientation: neither is
    /// transposed.
    pub(crate) fn stored(w: Stored, out_major: bool, dtype: Dtype) -> Self {
        let (k, n) = if out_major { (w.cols, w.rows) } else { (w.rows, w.cols) };
        match (dtype, w.values) {
            (Dtype::Q8, StoredValues::Q8 { codes, scales, per_row }) if per_row == out_major => {
                Matrix::Q8(PackedQ8::from_codes(&codes, k, n, out_major, scales))
            }
            (Dtype::Q8, StoredValues::F32(values)) => Matrix::Q8(PackedQ8::quantize(&values, k, n, out_major)),
            (dtype, values) => {
                let (values, shape) = Stored { rows: w.rows, cols: w.cols, values }.into_kn(out_major);
                Self::weights(values, shape, dtype)
            }
        }
    }

    /// An embedding table `[rows, width]` as stored, kept in `dtype`: int8 codes with one
    /// scale per row are kept as they are.
    pub(crate) fn stored_table(t: Stored, dtype: Dtype) -> Self {
        match (dtype, t.values) {
            (Dtype::Q8, StoredValues::Q8 { codes, scales, per_row: true }) => {
                Matrix::Q8Rows { codes, scales, width: t.cols }
            }
            (dtype, values) => {
                let shape = [t.rows, t.cols];
                Self::table(Stored { rows: t.rows, cols: t.cols, values }.into_f32(), shape, dtype)
            }
        }
    }

    /// An embedding table `values: [rows, width]` kept in `dtype` (int8 per row).
    pub fn table(values: Vec<f32>, [rows, width]: [usize; 2], dtype: Dtype) -> Self {
        match dtype {
            Dtype::Q8 => {
                let mut codes = Vec::with_capacity(rows * width);
                let mut scales = Vec::with_capacity(rows);
                for row in values.chunks_exact(width) {
                    let scale = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                    codes.extend(row.iter().map(|&v| qgemm::code(v, scale)));
                    scales.push(scale);
                }
                Matrix::Q8Rows { codes, scales, width }
            }
            _ => Self::weights(values, [rows, width], dtype),
        }
    }

    /// Bytes the matrix holds.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32(v) => 4 * v.len(),
            Matrix::F16(v) => 2 * v.len(),
            Matrix::Q8(q) => q.bytes(),
            Matrix::Q8Rows { codes, scales, .. } => codes.len() + 4 * scales.len(),
        }
    }

    /// Row `r` of a table (`width` values) in f32, into `out`.
    pub fn row(&self, r: usize, width: usize, out: &mut [f32]) {
        let out = &mut out[..width];
        match self {
            Matrix::F32(v) => out.copy_from_slice(&v[r * width..(r + 1) * width]),
            Matrix::F16(v) => v[r * width..(r + 1) * width].iter().zip(out).for_each(|(h, o)| *o = h.to_f32()),
            Matrix::Q8Rows { codes, scales, width } => {
                let s = scales[r];
                codes[r * width..(r + 1) * width].iter().zip(out).for_each(|(&q, o)| *o = s * q as f32);
            }
            Matrix::Q8(q) => out.iter_mut().enumerate().for_each(|(c, o)| *o = q.scales[c] * q.code(r, c) as f32),
        }
    }

    /// `y = epilogue(x·W + b)`, `x: [rows, k]`; for [`Epilogue::Residual`] the sums are added
    /// to `y`. `scratch` holds the quantized activations of a q8 product.
    #[allow(clippy::too_many_arguments)]
    pub fn linear(
        &self,
        x: &[f32],
        rows: usize,
        k: usize,
        n: usize,
        bias: Option<&[f32]>,
        epilogue: Epilogue,
        y: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let y = &mut y[..rows * n];
        start(y, n, bias, epilogue);
        match self {
            Matrix::F32(w) => accumulate(x, rows, k, w, n, 0, y, n),
            Matrix::F16(w) => {
                for col in (0..n).step_by(F16_PANEL) {
                    let cols = F16_PANEL.min(n - col);
                    scratch.panel.clear();
                    for row in w.chunks_exact(n) {
                        scratch.panel.extend(row[col..col + cols].iter().map(|h| h.to_f32()));
                    }
                    accumulate(x, rows, k, &scratch.panel, cols, col, y, n);
                }
            }
            Matrix::Q8(w) => {
                assert_eq!((w.k, w.n), (k, n), "q8 weights' shape");
                scratch.rows.quantize(x, rows, k);
                add_q8(&scratch.rows, w, rows, y);
            }
            Matrix::Q8Rows { .. } => unreachable!("an embedding table is looked up, not multiplied"),
        }
        finish(y, epilogue);
    }
}

/// Buffers a product reuses from call to call.
#[derive(Default)]
pub struct Scratch {
    rows: QuantRows,
    panel: Vec<f32>,
}

/// Rows of `y` per parallel task natively (a multiple of [`MR`]).
#[cfg(not(target_arch = "wasm32"))]
const ROWS_PER_TASK: usize = 16 * MR;

/// `y[m][n] += a_m·s_n·(acc − z_m·colsum_n)` over the exact int8 sums: rows split across
/// rayon's threads natively, one thread in wasm (the page splits batches across Workers).
fn add_q8(x: &QuantRows, w: &PackedQ8, rows: usize, y: &mut [f32]) {
    let isa = Isa::best();
    let n = w.n;
    let (scales, colsum) = (&w.scales[..], w.colsum());
    let dequantize = |first: usize, y: &mut [f32]| {
        let count = y.len() / n;
        qgemm::product(x, w, isa, first..first + count, |row0, block, acc| {
            let cols = block * NR..(block * NR + NR).min(n);
            let (s, cs) = (&scales[cols.clone()], &colsum[cols.clone()]);
            for (i, r) in (row0..(row0 + MR).min(first + count)).enumerate() {
                let (a, z) = (x.scale[r], x.zero[r]);
                let out = &mut y[(r - first) * n + cols.start..(r - first) * n + cols.end];
                for (((o, &sum), &c), &s) in out.iter_mut().zip(&acc[i]).zip(cs).zip(s) {
                    *o += (sum - z * c) as f32 * (a * s);
                }
            }
        });
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        y[..rows * n].par_chunks_mut(ROWS_PER_TASK * n).enumerate().for_each(|(t, y)| dequantize(t * ROWS_PER_TASK, y));
    }
    #[cfg(target_arch = "wasm32")]
    dequantize(0, &mut y[..rows * n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_kernels::tests::values;
    use prefscope_core::scoring::transformer as twin;

    /// Largest error relative to the largest reference value.
    fn relative(got: &[f32], want: &[f32]) -> f32 {
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) / scale
    }

    #[test]
    fn every_dtype_computes_the_twins_product_within_its_precision() {
        for (rows, k, n) in [(1, 3, 5), (7, 65, 300), (66, 40, 9)] {
            let (x, w, bias) = (values(rows * k, 1), values(k * n, 2), values(n, 3));
            for epilogue in [Epilogue::None, Epilogue::Gelu, Epilogue::Residual] {
                let start = values(rows * n, 4);
                let mut want = start.clone();
                twin::linear(&x, rows, k, &w, n, Some(&bias), epilogue, &mut want);
                for (dtype, tolerance) in [(Dtype::F32, 1e-6), (Dtype::F16, 2e-3), (Dtype::Q8, 3e-2)] {
                    let m = Matrix::weights(w.clone(), [k, n], dtype);
                    let mut got = start.clone();
                    m.linear(&x, rows, k, n, Some(&bias), epilogue, &mut got, &mut Scratch::default());
                    let err = relative(&got, &want);
                    assert!(err < tolerance, "{dtype:?} {epilogue:?} {rows}×{k}×{n}: {err}");
                }
            }
        }
    }

    #[test]
    fn q8_products_are_the_integer_sums_dequantized() {
        // The dequantization alone, against integers computed here from the codes.
        let (rows, k, n) = (5, 9, 11);
        let (x, w) = (values(rows * k, 5), values(k * n, 6));
        let packed = PackedQ8::quantize(&w, k, n, false);
        let mut q = QuantRows::default();
        q.quantize(&x, rows, k);
        let mut got = vec![0.0; rows * n];
        add_q8(&q, &packed, rows, &mut got);
        for r in 0..rows {
            for c in 0..n {
                let dot: i32 = (0..k).map(|t| q.code(r, t) as i32 * packed.code(t, c) as i32).sum();
                let want = (dot - q.zero[r] * packed.colsum()[c]) as f32 * (q.scale[r] * packed.scales[c]);
                assert_eq!(got[r * n + c].to_bits(), want.to_bits(), "({r}, {c})");
            }
        }
    }

    #[test]
    fn tables_look_rows_up_in_every_dtype() {
        let (rows, width) = (6, 10);
        let t = values(rows * width, 9);
        for (dtype, tolerance) in [(Dtype::F32, 0.0), (Dtype::F16, 1e-3), (Dtype::Q8, 2.0 / 127.0)] {
            let m = Matrix::table(t.clone(), [rows, width], dtype);
            let mut out = vec![0.0; width];
            for r in 0..rows {
                m.row(r, width, &mut out);
                let err = out.iter().zip(&t[r * width..]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(err <= tolerance, "{dtype:?} row {r}: {err}");
            }
        }
        assert!(matches!(Matrix::table(t, [rows, width], Dtype::Q8), Matrix::Q8Rows { .. }));
    }
}
