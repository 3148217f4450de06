//! The int8 matrix product behind the CPU towers' `q8` weights.
//!
//! Weights are quantized symmetrically per output column into [-127, 127]; activations per
//! row, asymmetrically, into [0, 127] with a zero point. Products accumulate exactly in i32,
//! and the row-sum correction removes the zero point afterwards:
//! `y[m][n] = a_m·s_n·(Σ_k xq[m][k]·wq[k][n] − z_m·Σ_k wq[k][n])`.
//! Keeping the activations in [0, 127] is what lets one set of integers run on every
//! instruction set: it is the unsigned operand of x86's `pmaddubsw`/`vpdpbusd` and the "i7"
//! operand of wasm's relaxed dot product, whose result is only portable there, and no pair
//! sum can saturate 16 bits (2·127·127 < 2¹⁵). Every kernel below therefore computes the same
//! i32 sums, bit for bit, as the integer twin in the tests.
//!
//! Packed layout (XNNPACK's and MLAS's idea: the weights are rearranged once, at load, into
//! the order the microkernel reads them): columns in blocks of [`NR`], and within a block, for
//! each group of four rows of `k`, the four codes of column 0, then of column 1, …: 32 bytes,
//! one AVX2 register or two wasm `v128`s, whose dot products with four activations broadcast
//! to every lane give eight column sums. Activations are padded to [`MR`] rows and to a
//! multiple of four columns, weights to [`NR`] columns, with zeros.

/// Rows of the microtile: six rows × two vectors of accumulators, the two weight vectors and
/// one activation broadcast fit the 16 vector registers of x86-64 (where wasm runs too).
pub const MR: usize = 6;
/// Columns of the microtile (a block of the packed weights).
pub const NR: usize = 8;
/// Rows of activations per cache block (a multiple of [`MR`]): the weights of one block
/// (`NR·k` bytes) are read once per `MC` rows, from L1.
const MC: usize = 10 * MR;

/// An instruction set the product runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust over the packed layout.
    Scalar,
    /// x86-64 AVX2: `vpmaddubsw` then `vpmaddwd`.
    Avx2,
    /// x86-64 AVX-512 VNNI on 256-bit vectors: `vpdpbusd`.
    Vnni,
    /// WebAssembly SIMD: `i32x4.dot_i16x8_s` on widened operands.
    Simd128,
    /// WebAssembly relaxed SIMD: `i32x4.relaxed_dot_i8x16_i7x16_add_s`.
    Relaxed,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Vnni => "avx512-vnni",
            Isa::Simd128 => "simd128",
            Isa::Relaxed => "relaxed-simd",
        }
    }

    /// Every instruction set this build can run here, the fastest last (detected once).
    pub fn available() -> &'static [Isa] {
        static AVAILABLE: std::sync::OnceLock<Vec<Isa>> = std::sync::OnceLock::new();
        AVAILABLE.get_or_init(Self::detect)
    }

    fn detect() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut isas = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                isas.push(Isa::Avx2);
            }
            if std::is_x86_feature_detected!("avx512vnni") && std::is_x86_feature_detected!("avx512vl") {
                isas.push(Isa::Vnni);
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        isas.push(Isa::Simd128);
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        isas.push(Isa::Relaxed);
        isas
    }

    /// The fastest instruction set here.
    pub fn best() -> Isa {
        Isa::available().last().copied().unwrap_or(Isa::Scalar)
    }
}

/// A weight matrix `[k, n]` (`x · W` orientation) in int8, packed for the microkernels.
#[derive(Clone)]
pub struct PackedQ8 {
    pub k: usize,
    pub n: usize,
    /// `k` rounded up to a multiple of four.
    kp: usize,
    data: Vec<i8>,
    /// One per output column: `w ≈ scale·code`.
    pub scales: Vec<f32>,
    /// `Σ_k code[k][n]`, for the zero-point correction.
    colsum: Vec<i32>,
}

/// `v` rounded to the nearest integer, ties to even, for |v| < 2²²: adding 1.5·2²³ leaves no
/// fraction bits, so the addition itself rounds. Plain IEEE arithmetic, so it vectorises on
/// every target (x86-64's baseline has no rounding instruction; `round_ties_even` becomes a
/// call per value there) and gives the same integers everywhere.
#[inline(always)]
fn round_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// The symmetric int8 code of `v` under `scale` (0 for an all-zero column).
pub(crate) fn code(v: f32, scale: f32) -> i8 {
    if scale > 0.0 {
        round_even((v / scale).clamp(-127.0, 127.0)) as i8
    } else {
        0
    }
}

impl PackedQ8 {
    /// Quantizes `w` per output column (`scale = max|w| / 127` over the column's `k` weights),
    /// given `[k, n]`, or `[n, k]` when `out_major` (torch's Linear orientation, packed as is:
    /// no transposed copy).
    pub fn quantize(w: &[f32], k: usize, n: usize, out_major: bool) -> Self {
        assert_eq!(w.len(), k * n, "weight matrix size");
        let mut scales = vec![0f32; n];
        if out_major {
            for (s, row) in scales.iter_mut().zip(w.chunks_exact(k.max(1))) {
                *s = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            }
        } else {
            for row in w.chunks_exact(n.max(1)) {
                scales.iter_mut().zip(row).for_each(|(s, v)| *s = s.max(v.abs()));
            }
        }
        scales.iter_mut().for_each(|s| *s /= 127.0);
        let at = |i: usize| if out_major { i / k } else { i % n };
        let codes: Vec<i8> = w.iter().enumerate().map(|(i, &v)| code(v, scales[at(i)])).collect();
        Self::from_codes(&codes, k, n, out_major, scales)
    }

    /// Packs int8 `codes` stored `[k, n]`, or `[n, k]` when `out_major`, with one scale per
    /// output column (a quantized checkpoint's, used as they are).
    pub fn from_codes(codes: &[i8], k: usize, n: usize, out_major: bool, scales: Vec<f32>) -> Self {
        assert_eq!(codes.len(), k * n, "weight matrix size");
        if !out_major {
            return Self::pack(k, n, |r, c| codes[r * n + c], scales);
        }
        assert_eq!(scales.len(), n, "one scale per column");
        let kp = k.div_ceil(4) * 4;
        let mut data = vec![0i8; n.div_ceil(NR) * kp * NR];
        let mut colsum = vec![0i32; n];
        // Column by column: each writes within its block's `kp·NR` bytes.
        for (c, (column, sum)) in codes.chunks_exact(k.max(1)).zip(&mut colsum).enumerate() {
            let base = (c / NR) * kp * NR + (c % NR) * 4;
            for (r, &q) in column.iter().enumerate() {
                data[base + (r / 4) * 4 * NR + r % 4] = q;
            }
            *sum = column.iter().map(|&q| q as i32).sum();
        }
        PackedQ8 { k, n, kp, data, scales, colsum }
    }

    /// Packs codes given as `code(row, column)` with their column scales.
    pub fn pack(k: usize, n: usize, code: impl Fn(usize, usize) -> i8, scales: Vec<f32>) -> Self {
        assert_eq!(scales.len(), n, "one scale per column");
        let kp = k.div_ceil(4) * 4;
        let mut data = vec![0i8; n.div_ceil(NR) * kp * NR];
        let mut colsum = vec![0i32; n];
        for r in 0..k {
            for (c, sum) in colsum.iter_mut().enumerate() {
                let q = code(r, c);
                *sum += q as i32;
                data[(c / NR) * kp * NR + (r / 4) * 4 * NR + (c % NR) * 4 + r % 4] = q;
            }
        }
        PackedQ8 { k, n, kp, data, scales, colsum }
    }

    /// The code of element `(row, column)`.
    pub fn code(&self, r: usize, c: usize) -> i8 {
        self.data[(c / NR) * self.kp * NR + (r / 4) * 4 * NR + (c % NR) * 4 + r % 4]
    }

    /// `Σ_k code[k][n]` per column, for the zero-point correction.
    pub fn colsum(&self) -> &[i32] {
        &self.colsum
    }

    /// Bytes held (codes, scales and column sums).
    pub fn bytes(&self) -> usize {
        self.data.len() + 8 * self.n
    }
}

/// Activations quantized per row into [0, 127]: `x ≈ scale·(code − zero)`.
#[derive(Default)]
pub struct QuantRows {
    rows: usize,
    /// Row stride of `data`: `k` rounded up to a multiple of four.
    kp: usize,
    /// `rows` rounded up to [`MR`], padding zero.
    data: Vec<u8>,
    /// The codes again as i16, four per `u64` (one group of `k`), for the baseline wasm kernel,
    /// whose dot product takes i16: one 64-bit broadcast then replaces a load and a widening
    /// per row and group. Filled by [`QuantRows::quantize`] where that kernel is the best here.
    wide: Vec<u64>,
    pub scale: Vec<f32>,
    pub zero: Vec<i32>,
}

impl QuantRows {
    /// Quantizes the rows of `x: [rows, k]` into this buffer (its memory is reused).
    pub fn quantize(&mut self, x: &[f32], rows: usize, k: usize) {
        let kp = k.div_ceil(4) * 4;
        self.rows = rows;
        self.kp = kp;
        self.data.clear();
        self.data.resize(rows.div_ceil(MR) * MR * kp, 0);
        self.scale.clear();
        self.zero.clear();
        for (row, out) in x[..rows * k].chunks_exact(k).zip(self.data.chunks_exact_mut(kp)) {
            let (lo, hi) = range(row);
            let scale = if hi > lo { (hi - lo) / 127.0 } else { 1.0 };
            let inv = 1.0 / scale;
            let zero = round_even((-lo * inv).clamp(0.0, 127.0));
            for (q, &v) in out.iter_mut().zip(row) {
                // Through i32: a truncating conversion every target vectorises.
                *q = (round_even(v * inv) + zero).clamp(0.0, 127.0) as i32 as u8;
            }
            self.scale.push(scale);
            self.zero.push(zero as i32);
        }
        self.wide.clear();
        if Isa::best() == Isa::Simd128 {
            self.wide = widen(&self.data);
        }
    }

    /// The code of element `(row, column)`.
    pub fn code(&self, r: usize, c: usize) -> u8 {
        self.data[r * self.kp + c]
    }
}

/// Codes as i16, four to a `u64` in memory order (the layout of [`QuantRows::wide`]).
fn widen(codes: &[u8]) -> Vec<u64> {
    codes.chunks_exact(4).map(|q| u64::from_le_bytes([q[0], 0, q[1], 0, q[2], 0, q[3], 0])).collect()
}

/// `(min(x, 0), max(x, 0))`, in eight lanes of compare-and-select so that it vectorises
/// (the activations are finite: the checkpoint's values are checked at load).
fn range(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([0f32; 8], [0f32; 8]);
    let mut chunks = x.chunks_exact(8);
    for chunk in &mut chunks {
        for i in 0..8 {
            lo[i] = if chunk[i] < lo[i] { chunk[i] } else { lo[i] };
            hi[i] = if chunk[i] > hi[i] { chunk[i] } else { hi[i] };
        }
    }
    for &v in chunks.remainder() {
        lo[0] = if v < lo[0] { v } else { lo[0] };
        hi[0] = if v > hi[0] { v } else { hi[0] };
    }
    (lo.iter().copied().fold(0.0, f32::min), hi.iter().copied().fold(0.0, f32::max))
}

/// A microtile of exact sums: `acc[i][j] = Σ_k xq[row0 + i][k] · wq[k][block·NR + j]`.
pub type Tile = [[i32; NR]; MR];

/// Calls `tile(row0, block, &acc)` for every microtile of rows `rows` (a range starting at a
/// multiple of [`MR`]) and every column block, on `isa`. Padding rows and columns are included;
/// the caller skips them. Panics if `isa` is not in [`Isa::available`] or the shapes differ.
pub fn product(
    x: &QuantRows,
    w: &PackedQ8,
    isa: Isa,
    rows: std::ops::Range<usize>,
    mut tile: impl FnMut(usize, usize, &Tile),
) {
    assert_eq!(x.kp, w.kp, "activations and weights share k");
    assert!(rows.start.is_multiple_of(MR) && rows.end <= x.rows, "row range");
    assert!(Isa::available().contains(&isa), "{} is not available here", isa.name());
    let (kp, blocks) = (w.kp, w.n.div_ceil(NR));
    let end = rows.end.div_ceil(MR) * MR;
    // What every kernel reads, checked once: MR rows of `kp` codes from `row0 < end`, and two
    // blocks of `kp·NR` weight bytes from `block + 1 < blocks`.
    assert!(x.data.len() >= end * kp && w.data.len() >= blocks * kp * NR, "packed sizes");
    let (xp, wp) = (x.data.as_ptr(), w.data.as_ptr());
    // The baseline wasm kernel reads the i16 copy, made here when quantize did not.
    let wide = match isa == Isa::Simd128 && x.wide.is_empty() {
        true => std::borrow::Cow::Owned(widen(&x.data)),
        false => std::borrow::Cow::Borrowed(&x.wide),
    };
    #[allow(unused_variables)]
    let xw = wide.as_ptr();
    for chunk in (rows.start..end).step_by(MC) {
        for block in (0..blocks).step_by(2) {
            let pair = block + 1 < blocks;
            for row0 in (chunk..(chunk + MC).min(end)).step_by(MR) {
                // SAFETY: `row0 + MR ≤ end` and `block (+ 1) < blocks`: inside the sizes asserted
                // above; the instruction set was detected (`available()`).
                let (a, b) = unsafe {
                    let (x, w) = (xp.add(row0 * kp), wp.add(block * kp * NR));
                    match isa {
                        Isa::Scalar => (scalar(x, w, kp), pair.then(|| scalar(x, w.add(kp * NR), kp))),
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx2 | Isa::Vnni if pair => {
                            let (a, b) =
                                if isa == Isa::Vnni { x86::vnni::<2>(x, w, kp) } else { x86::avx2::<2>(x, w, kp) };
                            (a, Some(b))
                        }
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx2 => (x86::avx2::<1>(x, w, kp).0, None),
                        #[cfg(target_arch = "x86_64")]
                        Isa::Vnni => (x86::vnni::<1>(x, w, kp).0, None),
                        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                        Isa::Simd128 => {
                            let x = xw.add(row0 * kp / 4);
                            (wasm::simd128(x, w, kp), pair.then(|| wasm::simd128(x, w.add(kp * NR), kp)))
                        }
                        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
                        Isa::Relaxed => (wasm::relaxed(x, w, kp), pair.then(|| wasm::relaxed(x, w.add(kp * NR), kp))),
                        #[allow(unreachable_patterns)]
                        _ => unreachable!("checked against available()"),
                    }
                };
                tile(row0, block, &a);
                if let Some(b) = b {
                    tile(row0, block + 1, &b);
                }
            }
        }
    }
}

/// Every sum `Σ_k xq[m][k]·wq[k][n]` as `[rows, n]`, computed on `isa` through [`product`].
pub fn sums(x: &QuantRows, w: &PackedQ8, isa: Isa) -> Vec<i32> {
    let (rows, n) = (x.rows, w.n);
    let mut out = vec![0i32; rows * n];
    product(x, w, isa, 0..rows, |row0, block, acc| {
        for (i, r) in (row0..(row0 + MR).min(rows)).enumerate() {
            for (j, c) in (block * NR..(block * NR + NR).min(n)).enumerate() {
                out[r * n + c] = acc[i][j];
            }
        }
    });
    out
}

/// The integer twin of [`sums`]: straight from the codes, no packing, no SIMD.
pub fn twin_sums(x: &QuantRows, w: &PackedQ8) -> Vec<i32> {
    let mut out = vec![0i32; x.rows * w.n];
    for r in 0..x.rows {
        for c in 0..w.n {
            out[r * w.n + c] = (0..w.k).map(|t| x.code(r, t) as i32 * w.code(t, c) as i32).sum();
        }
    }
    out
}

/// Every instruction set here against [`twin_sums`] at off-tile sizes (1, 7, 65 and 257 rows;
/// widths and depths not divisible by the tiles), with codes at their extremes: the check the
/// browser suites run inside each wasm build of the page. Returns the instruction sets checked.
pub fn self_check() -> Result<Vec<&'static str>, String> {
    let value = |i: usize, seed: u32| {
        ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed * 97) % 1000) as f32 / 250.0 - 2.0
    };
    for (rows, k, n) in [(1, 1, 1), (7, 5, 9), (65, 33, 20), (257, 100, 33), (13, 768, 17)] {
        // Every fifth weight at a column's maximum (code ±127); each row spans [0, 127].
        let w: Vec<f32> = (0..k * n).map(|i| if i % 5 == 0 { 2.0 } else { value(i, 1) }).collect();
        let x: Vec<f32> = (0..rows * k).map(|i| value(i, 2)).collect();
        let packed = PackedQ8::quantize(&w, k, n, false);
        let mut q = QuantRows::default();
        q.quantize(&x, rows, k);
        let want = twin_sums(&q, &packed);
        for &isa in Isa::available() {
            if sums(&q, &packed, isa) != want {
                return Err(format!("{} differs from the integer twin at {rows}×{k}×{n}", isa.name()));
            }
        }
    }
    Ok(Isa::available().iter().map(|i| i.name()).collect())
}

/// # Safety
/// `x` holds MR rows of `kp` codes, `w` one block of `kp·NR` bytes.
unsafe fn scalar(x: *const u8, w: *const i8, kp: usize) -> Tile {
    let (x, w) = (std::slice::from_raw_parts(x, MR * kp), std::slice::from_raw_parts(w, kp * NR));
    let mut acc = [[0i32; NR]; MR];
    for g in 0..kp / 4 {
        let wg = &w[g * 4 * NR..(g + 1) * 4 * NR];
        for (i, row) in acc.iter_mut().enumerate() {
            let xg = &x[i * kp + g * 4..i * kp + g * 4 + 4];
            for (j, a) in row.iter_mut().enumerate() {
                *a += (0..4).map(|t| xg[t] as i32 * wg[j * 4 + t] as i32).sum::<i32>();
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Tile, MR, NR};
    use std::arch::x86_64::*;

    /// The four activations of row `i`, group `g`, in every 32-bit lane.
    #[inline(always)]
    unsafe fn broadcast(x: *const u8, at: usize) -> __m256i {
        _mm256_broadcastd_epi32(_mm_loadu_si32(x.add(at).cast()))
    }

    /// `B` (1 or 2) neighbouring blocks' tiles from their accumulators.
    #[inline(always)]
    unsafe fn store<const B: usize>(acc: [[__m256i; B]; MR]) -> (Tile, Tile) {
        let mut out = [[[0i32; NR]; MR]; 2];
        for (i, row) in acc.iter().enumerate() {
            for (b, a) in row.iter().enumerate() {
                _mm256_storeu_si256(out[b][i].as_mut_ptr().cast(), *a);
            }
        }
        (out[0], out[1])
    }

    /// The loop both x86 kernels share: `dot(acc, x, w)` adds four u8 × i8 products per lane.
    /// Inlined into each caller, so it is compiled with that caller's features.
    #[inline(always)]
    unsafe fn tiles<const B: usize>(
        x: *const u8,
        w: *const i8,
        kp: usize,
        dot: impl Fn(__m256i, __m256i, __m256i) -> __m256i,
    ) -> (Tile, Tile) {
        let mut acc = [[_mm256_setzero_si256(); B]; MR];
        for g in 0..kp / 4 {
            let mut wg = [_mm256_setzero_si256(); B];
            for (b, v) in wg.iter_mut().enumerate() {
                *v = _mm256_loadu_si256(w.add(b * kp * NR + g * 32).cast());
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xv = broadcast(x, i * kp + g * 4);
                for (a, &wv) in row.iter_mut().zip(&wg) {
                    *a = dot(*a, xv, wv);
                }
            }
        }
        store(acc)
    }

    /// # Safety
    /// AVX2 is present; `x` holds MR rows of `kp` codes, `w` `B` blocks of `kp·NR` bytes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn avx2<const B: usize>(x: *const u8, w: *const i8, kp: usize) -> (Tile, Tile) {
        let ones = _mm256_set1_epi16(1);
        // u8 × i8 pairs into i16 (no saturation: codes ≤ 127), pairs of those into i32.
        tiles::<B>(x, w, kp, |a, x, w| _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones)))
    }

    /// # Safety
    /// AVX-512 VNNI and VL are present; the pointers as for [`avx2`].
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    pub unsafe fn vnni<const B: usize>(x: *const u8, w: *const i8, kp: usize) -> (Tile, Tile) {
        tiles::<B>(x, w, kp, |a, x, w| _mm256_dpbusd_epi32(a, x, w))
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{Tile, MR, NR};
    use core::arch::wasm32::*;

    /// Lanes `[c0·k01, c0·k23, c1·k01, c1·k23]` → column sums `c0, c1`.
    #[inline(always)]
    fn pairs(v: v128) -> [i32; 2] {
        [
            i32x4_extract_lane::<0>(v).wrapping_add(i32x4_extract_lane::<1>(v)),
            i32x4_extract_lane::<2>(v).wrapping_add(i32x4_extract_lane::<3>(v)),
        ]
    }

    /// Baseline SIMD: codes widened to i16, `i32x4.dot_i16x8_s` sums pairs of rows of `k`. The
    /// activations come widened already ([`super::QuantRows`]'s `wide`: one 64-bit broadcast
    /// per row and group gives `[x0, x1, x2, x3, x0, x1, x2, x3]`). The tile runs as four passes of three rows × four columns: V8
    /// keeps the six accumulators, two weight vectors and three activations in registers, where
    /// six rows spilled accumulators to the stack every group.
    ///
    /// # Safety
    /// `x` holds MR rows of `kp / 4` widened groups, `w` one block of `kp·NR` bytes.
    pub unsafe fn simd128(x: *const u64, w: *const i8, kp: usize) -> Tile {
        const ROWS: usize = 3;
        let mut out = [[0i32; NR]; MR];
        for part in 0..MR / ROWS {
            for half in 0..2 {
                let mut lo = [i32x4_splat(0); ROWS];
                let mut hi = [i32x4_splat(0); ROWS];
                let x = x.add(part * ROWS * kp / 4);
                for g in 0..kp / 4 {
                    let wg = v128_load(w.add(g * 32 + half * 16).cast());
                    let (wl, wh) = (i16x8_extend_low_i8x16(wg), i16x8_extend_high_i8x16(wg));
                    for i in 0..ROWS {
                        let xv = v128_load64_splat(x.add(i * kp / 4 + g).cast());
                        lo[i] = i32x4_add(lo[i], i32x4_dot_i16x8(wl, xv));
                        hi[i] = i32x4_add(hi[i], i32x4_dot_i16x8(wh, xv));
                    }
                }
                for i in 0..ROWS {
                    let ([a, b], [c, d]) = (pairs(lo[i]), pairs(hi[i]));
                    out[part * ROWS + i][half * 4..half * 4 + 4].copy_from_slice(&[a, b, c, d]);
                }
            }
        }
        out
    }

    /// Relaxed SIMD: four products per lane summed into i32 in one instruction, weights as the
    /// signed operand, activations (in [0, 127]) as the i7 one. V8 lowers it to one `vpdpbusd`
    /// on x86 with AVX-VNNI and one `sdot` on ARM64 with the dot-product extension (Apple
    /// silicon); elsewhere on x86 to `pmaddubsw`, `pmaddwd` and `paddd`. Three rows at a time,
    /// as [`simd128`], so that nothing spills.
    ///
    /// # Safety
    /// `x` holds MR rows of `kp` codes, `w` one block of `kp·NR` bytes.
    #[cfg(target_feature = "relaxed-simd")]
    pub unsafe fn relaxed(x: *const u8, w: *const i8, kp: usize) -> Tile {
        const ROWS: usize = 3;
        let mut out = [[0i32; NR]; MR];
        for part in 0..MR / ROWS {
            let x = x.add(part * ROWS * kp);
            let mut acc = [[i32x4_splat(0); 2]; ROWS];
            for g in 0..kp / 4 {
                let w0 = v128_load(w.add(g * 32).cast());
                let w1 = v128_load(w.add(g * 32 + 16).cast());
                for (i, a) in acc.iter_mut().enumerate() {
                    let xv = v128_load32_splat(x.add(i * kp + g * 4).cast());
                    a[0] = i32x4_relaxed_dot_i8x16_i7x16_add(w0, xv, a[0]);
                    a[1] = i32x4_relaxed_dot_i8x16_i7x16_add(w1, xv, a[1]);
                }
            }
            for (o, a) in out[part * ROWS..].iter_mut().zip(acc) {
                for (h, v) in a.into_iter().enumerate() {
                    v128_store(o[h * 4..].as_mut_ptr().cast(), v);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> u32 {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) as u32
        }
    }

    /// Codes at the extremes (±127 weights, 0 and 127 activations) as well as between.
    fn operands(rows: usize, k: usize, n: usize, seed: u64) -> (QuantRows, PackedQ8) {
        let mut next = lcg(seed);
        let codes: Vec<i8> = (0..k * n)
            .map(|_| match next() % 8 {
                0 => 127,
                1 => -127,
                _ => ((next() % 255) as i32 - 127) as i8,
            })
            .collect();
        let w = PackedQ8::pack(k, n, |r, c| codes[r * n + c], vec![1.0; n]);
        let mut x = QuantRows::default();
        // Any floats: only the codes matter here. Rows spanning [-1, 1] give codes in [0, 127].
        let xs: Vec<f32> = (0..rows * k).map(|_| next() as f32 / u32::MAX as f32 * 2.0 - 1.0).collect();
        x.quantize(&xs, rows, k);
        for r in 0..rows {
            // Force the extremes into some rows.
            if r % 3 == 0 {
                let kp = x.kp;
                x.data[r * kp..r * kp + k]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = if i % 2 == 0 { 127 } else { 0 });
            }
        }
        (x, w)
    }

    #[test]
    fn every_instruction_set_gives_the_twins_integers_at_off_tile_sizes() {
        let isas = Isa::available();
        for (rows, k, n) in [(1, 1, 1), (7, 5, 9), (65, 33, 20), (257, 100, 33), (4, 4, 8), (13, 768, 17)] {
            let (x, w) = operands(rows, k, n, (rows * 1000 + k * 10 + n) as u64);
            let want = twin_sums(&x, &w);
            for &isa in isas {
                assert_eq!(sums(&x, &w, isa), want, "{} at {rows}×{k}×{n}", isa.name());
            }
        }
    }

    #[test]
    fn the_self_check_passes_on_every_instruction_set_here() {
        assert_eq!(self_check().unwrap().len(), Isa::available().len());
    }

    #[test]
    fn sums_at_the_largest_k_stay_exact() {
        // ViT-H's MLP (k = 5120), every product at ±127·127: far from i32's limit.
        let (k, n, rows) = (5120, 8, 4);
        let w = PackedQ8::pack(k, n, |_, c| if c % 2 == 0 { 127 } else { -127 }, vec![1.0; n]);
        let mut x = QuantRows::default();
        x.quantize(&vec![1.0; rows * k], rows, k);
        for &isa in Isa::available() {
            let got = sums(&x, &w, isa);
            assert!(
                got.iter()
                    .enumerate()
                    .all(|(i, &v)| v == if i % 2 == 0 { 127 * 127 * 5120 } else { -127 * 127 * 5120 }),
                "{}",
                isa.name()
            );
        }
    }

    #[test]
    fn quantized_rows_and_columns_reconstruct_within_half_a_step() {
        let mut next = lcg(7);
        let (rows, k) = (5, 37);
        let xs: Vec<f32> = (0..rows * k).map(|_| next() as f32 / u32::MAX as f32 * 6.0 - 1.0).collect();
        let mut x = QuantRows::default();
        x.quantize(&xs, rows, k);
        for r in 0..rows {
            for c in 0..k {
                let back = x.scale[r] * (x.code(r, c) as i32 - x.zero[r]) as f32;
                assert!((back - xs[r * k + c]).abs() <= 0.5001 * x.scale[r], "row {r} col {c}");
                assert!(x.code(r, c) <= 127);
            }
        }
        let w: Vec<f32> = (0..k * 3).map(|_| next() as f32 / u32::MAX as f32 - 0.5).collect();
        let q = PackedQ8::quantize(&w, k, 3, false);
        for r in 0..k {
            for c in 0..3 {
                assert!((q.scales[c] * q.code(r, c) as f32 - w[r * 3 + c]).abs() <= 0.5001 * q.scales[c]);
            }
        }
        // An all-zero column and an all-zero row quantize without dividing by zero.
        let z = PackedQ8::quantize(&[0.0; 4], 2, 2, false);
        assert_eq!((z.scales[0], z.code(1, 1)), (0.0, 0));
        x.quantize(&[0.0; 4], 1, 4);
        assert_eq!((x.zero[0], x.code(0, 3)), (0, 0));
    }

    #[test]
    fn torch_oriented_weights_pack_as_their_transpose_does() {
        let mut next = lcg(11);
        let (k, n) = (37, 13);
        // `[n, k]` as torch stores a Linear weight; its transpose is the `[k, n]` product operand.
        let nk: Vec<f32> = (0..n * k).map(|_| next() as f32 / u32::MAX as f32 - 0.5).collect();
        let kn: Vec<f32> = (0..k * n).map(|i| nk[(i % n) * k + i / n]).collect();
        let (a, b) = (PackedQ8::quantize(&nk, k, n, true), PackedQ8::quantize(&kn, k, n, false));
        assert_eq!((&a.data, &a.scales, &a.colsum), (&b.data, &b.scales, &b.colsum));
        // Codes given with their scales (a quantized checkpoint) pack to the same bytes.
        let codes: Vec<i8> = (0..n * k).map(|i| a.code(i % k, i / k)).collect();
        let c = PackedQ8::from_codes(&codes, k, n, true, a.scales.clone());
        assert_eq!((&c.data, &c.colsum), (&a.data, &a.colsum));
    }
}
