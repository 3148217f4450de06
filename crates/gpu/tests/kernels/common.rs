//! Helpers for the GPU-versus-core comparisons: the device (lavapipe in CI), seeded random
//! inputs and tolerance checks that print the worst element.
#![allow(dead_code)]

use prefscope_core::scoring::embedding::Embeddings;
#[cfg(not(target_arch = "wasm32"))]
use prefscope_gpu::Gpu;

/// The adapter the tests run on, software adapters included. A missing adapter fails the
/// test: CI installs Mesa's lavapipe so that these comparisons always run.
#[cfg(not(target_arch = "wasm32"))]
pub fn gpu() -> Gpu {
    prefscope_gpu::block_on(Gpu::new(true)).expect("no GPU adapter: install mesa-vulkan-drivers (lavapipe)")
}

/// A tiny binding cap that forces every kernel through its chunked path.
#[cfg(not(target_arch = "wasm32"))]
pub fn tiny(limit: u64) -> Gpu {
    gpu().with_binding_limit(limit)
}

/// xorshift64*, seeded.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(1e-12, 1.0), self.uniform(0.0, 1.0));
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn embeddings(&mut self, rows: usize, dim: usize) -> Embeddings {
        Embeddings::new(dim, (0..rows * dim).map(|_| self.normal() as f32).collect()).unwrap()
    }
}

/// Asserts `|a − b| ≤ abs + rel·|b|` elementwise, naming the worst index.
pub fn assert_close<A: Into<f64> + Copy, B: Into<f64> + Copy>(what: &str, got: &[A], want: &[B], abs: f64, rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.into(), w.into());
        if g.is_nan() && w.is_nan() {
            continue;
        }
        let ok = (g - w).abs() <= abs + rel * w.abs();
        assert!(ok, "{what}[{i}]: gpu {g} vs cpu {w} (tolerance {abs} + {rel}·|cpu|)");
    }
}
