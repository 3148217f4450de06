//! What this adapter can do, measured: arithmetic peak (dependent FMA chains) and memory
//! bandwidth (a vec4 copy). Benchmarks state kernel speeds as shares of these, since a
//! browser or a software rasteriser publishes no datasheet numbers.

use std::time::Duration;

use crate::kernel::{groups_for, shader, Shader};
use crate::params::CalibrateParams;
use crate::{Gpu, GpuError};

const SHADER: Shader = shader!("calibrate");

/// Measured peaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peaks {
    pub gflops: f64,
    pub gbytes_per_s: f64,
}

impl Gpu {
    /// Best of `repeats` runs of each microbenchmark, timed by `clock` (seconds since any
    /// fixed point: `Instant` natively, `performance.now()` in the browser).
    pub async fn measure_peaks(&self, repeats: usize, clock: &dyn Fn() -> f64) -> Result<Peaks, GpuError> {
        let threads: u64 = 1 << 20;
        let iterations = 256u32;
        let src = self.scratch("src", 16 * threads);
        let dst = self.scratch("dst", 16 * threads);
        let fma = CalibrateParams { n: threads as u32, iterations };
        let flops = threads as f64 * iterations as f64 * 64.0;
        let mut best_fma = f64::INFINITY;
        for _ in 0..repeats.max(1) + 1 {
            let t = self
                .timed(clock, |enc| self.dispatch(enc, &SHADER, "fma_peak", &fma, &[&src, &dst], groups_for(threads)))
                .await?;
            best_fma = best_fma.min(t);
        }
        // The copy moves as much as one binding allows, up to 256 MiB.
        let n = (self.binding_limit().min(256 << 20) / 16) as u32;
        let src = self.scratch("src", n as u64 * 16);
        let dst = self.scratch("dst", n as u64 * 16);
        let copy = CalibrateParams { n, iterations: 0 };
        let mut best_copy = f64::INFINITY;
        for _ in 0..repeats.max(1) + 1 {
            let t = self
                .timed(clock, |enc| self.dispatch(enc, &SHADER, "copy", &copy, &[&src, &dst], groups_for(n as u64)))
                .await?;
            best_copy = best_copy.min(t);
        }
        Ok(Peaks { gflops: flops / best_fma / 1e9, gbytes_per_s: 2.0 * 16.0 * n as f64 / best_copy / 1e9 })
    }

    /// Seconds from submitting what `record` records to its completion.
    pub(crate) async fn timed(
        &self,
        clock: &dyn Fn() -> f64,
        record: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<f64, GpuError> {
        let scope = self.scope("benchmark")?;
        let mut enc = self.encoder();
        record(&mut enc);
        let start = clock();
        self.finish(scope, enc, &[]).await?;
        Ok(clock() - start)
    }
}

/// Seconds as a `Duration`, for printing.
pub fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}
