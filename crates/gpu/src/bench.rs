//! Kernel-only timings on resident data, for `cargo xtask bench` (hidden from the docs: not an
//! API, a measurement). Each returns the best time in seconds and the bytes the kernels move.

use prefscope_core::preference::dpo::{LossType, Objective, PairwiseParams};

use crate::kernel::{groups_for, groups_per_item, shader, Shader};
use crate::params::{ReduceParams, TokensParams};
use crate::preference::{Setup, PREFERENCE, REDUCE};
use crate::{Gpu, GpuError};

const TOKENS: Shader = shader!("tokens");

/// `pair_values` (sigmoid) and the metric reductions over `n` resident pairs.
pub async fn preference(gpu: &Gpu, n: usize, repeats: usize, clock: &dyn Fn() -> f64) -> Result<(f64, u64), GpuError> {
    let objective = Objective::Pairwise { losses: vec![(LossType::Sigmoid, 1.0)], params: PairwiseParams::default() };
    let setup = Setup::of(&objective, 0.0);
    let stride = setup.stride();
    let column = |seed: f32| -> Vec<[f32; 2]> { (0..n).map(|i| [-(seed + (i % 977) as f32), 0.0]).collect() };
    let (pc, pr, rc, rr) = (column(1.0), column(2.0), column(1.5), column(2.5));
    let bufs: Vec<wgpu::Buffer> = [pc, pr, rc, rr].iter().map(|c| gpu.upload("logps", c)).collect();
    let lens = gpu.upload("lengths", &vec![[1.0f32, 1.0]; n]);
    let sorted = gpu.scratch("unused", 16);
    let out = gpu.scratch("pair values", (n * stride * 4) as u64);
    let groups = (n as u64).div_ceil(1024);
    let partials = gpu.scratch("partials", groups * stride as u64 * 4);
    let params = setup.params(n);
    let rp = ReduceParams { rows: n as u32, stride: stride as u32 };
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) + 1 {
        let t = gpu
            .timed(clock, |enc| {
                let ins = [&bufs[0], &bufs[1], &bufs[2], &bufs[3], &lens, &sorted, &out];
                gpu.dispatch(enc, &PREFERENCE, "pair_values", &params, &ins, groups_for(n as u64));
                gpu.dispatch(enc, &REDUCE, "column_sums", &rp, &[&out, &partials], groups_per_item(groups));
            })
            .await?;
        best = best.min(t);
    }
    // Reads 4 log-prob pairs and lengths, writes the row, the reduction reads it again.
    Ok((best, n as u64 * (5 * 8 + 2 * stride as u64 * 4)))
}

/// Per-token rewards and sequence sums over `segments × length` resident tokens.
pub async fn tokens(
    gpu: &Gpu,
    segments: usize,
    length: usize,
    repeats: usize,
    clock: &dyn Fn() -> f64,
) -> Result<(f64, u64), GpuError> {
    let total = segments * length;
    let offsets: Vec<u32> = (0..=segments).map(|s| (s * length) as u32).collect();
    let values: Vec<f32> = (0..total).map(|i| -((i % 1013) as f32) * 0.01).collect();
    let off = gpu.upload("offsets", &offsets);
    let pol = gpu.upload("policy", &values);
    let refr = gpu.upload("reference", &values);
    let out = gpu.scratch("per token", total as u64 * 4);
    let sums = gpu.scratch("sums", segments as u64 * 4);
    let params = TokensParams { segments: segments as u32, beta: 0.1, rewards: 1 };
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) + 1 {
        let t = gpu
            .timed(clock, |enc| {
                let b = [&off, &pol, &refr, &out, &sums];
                gpu.dispatch(enc, &TOKENS, "segments", &params, &b, groups_per_item(segments as u64));
            })
            .await?;
        best = best.min(t);
    }
    Ok((best, total as u64 * 12 + segments as u64 * 8))
}
