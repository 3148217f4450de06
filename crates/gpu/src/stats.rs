//! Ranking accuracy on the GPU (the report's), and histograms with atomics for the tests. Twins
//! of `prefscope_core::preference::ranking::{ranking_accuracy, ranking_accuracy_normalized}` and
//! `prefscope_core::histogram::histogram`.

use crate::kernel::{cast, chunks, groups_for, groups_per_item};
use crate::params::{PreferenceParams, ReduceParams};
use crate::preference::{split, PREFERENCE, REDUCE};
use crate::{Gpu, GpuError};

impl Gpu {
    /// Ranking accuracy on sequence log-likelihoods and, when lengths are given, on per-token
    /// averages: `(raw, normalized)`.
    pub async fn ranking_accuracy(
        &self,
        policy_chosen: &[f64],
        policy_rejected: &[f64],
        lengths: Option<(&[f64], &[f64])>,
    ) -> Result<(f64, Option<f64>), GpuError> {
        let n = policy_chosen.len();
        if policy_rejected.len() != n || lengths.is_some_and(|(c, r)| c.len() != n || r.len() != n) {
            return Err(GpuError::Shape("ranking accuracy needs columns of equal length".into()));
        }
        let mut sums = [0f64; 2];
        for r in chunks(n, self.items_per_binding(8)) {
            let m = r.len();
            let scope = self.scope("ranking accuracy")?;
            let pc = self.upload("policy chosen", &split(&policy_chosen[r.clone()]));
            let pr = self.upload("policy rejected", &split(&policy_rejected[r.clone()]));
            let lens: Vec<[f32; 2]> = match lengths {
                Some((c, l)) => r.clone().map(|i| [c[i] as f32, l[i] as f32]).collect(),
                None => vec![[1.0, 1.0]],
            };
            let lens = self.upload("lengths", &lens);
            let out = self.scratch("correct", m as u64 * 8);
            let groups = (m as u64).div_ceil(1024);
            let partials = self.scratch("partials", groups * 8);
            let mut enc = self.encoder();
            let params = PreferenceParams { n: m as u32, ..Default::default() };
            let b = [(1, &pc), (2, &pr), (5, &lens), (7, &out)];
            self.dispatch_at(&mut enc, &PREFERENCE, "ranking", &params, &b, groups_for(m as u64));
            let rp = ReduceParams { rows: m as u32, stride: 2 };
            self.dispatch(&mut enc, &REDUCE, "column_sums", &rp, &[&out, &partials], groups_per_item(groups));
            let bytes = self.finish(scope, enc, &[(&partials, groups * 8)]).await?;
            for part in cast::<f32>(&bytes[0]).chunks(2) {
                sums[0] += part[0] as f64;
                sums[1] += part[1] as f64;
            }
        }
        Ok((sums[0] / n as f64, lengths.map(|_| sums[1] / n as f64)))
    }
}

/// Histograms on the device, for the kernel's twin tests (the `testing` feature): the page and
/// the command bin on the CPU, where a chart's few thousand values belong.
#[cfg(feature = "testing")]
mod histograms {
    use prefscope_core::histogram::Histogram;

    use crate::kernel::{cast, chunks, groups_for, groups_per_item, shader, Shader};
    use crate::params::HistogramParams;
    use crate::preference::split;
    use crate::{Gpu, GpuError};

    const SHADER: Shader = shader!("histogram");

    impl Gpu {
        /// `bins` equal bins over `range` (default: the finite values' min and max, widened by
        /// ±0.5 when flat), numpy's half-open bins with the last closed; values outside the
        /// range and non-finite values are not counted.
        pub async fn histogram(
            &self,
            values: &[f64],
            bins: usize,
            range: Option<(f64, f64)>,
        ) -> Result<Histogram, GpuError> {
            let bins = bins.max(1);
            self.check_fits(|| format!("{bins} histogram bins"), (bins as u64 + 1) * 8)?;
            let chunk = self.items_per_binding(8);
            let (mut lo, mut hi) = match range {
                Some(r) => r,
                None => self.finite_range(values, chunk).await?,
            };
            if lo == hi {
                lo -= 0.5;
                hi += 0.5;
            }
            let edges: Vec<f64> = (0..=bins).map(|i| lo + (hi - lo) * i as f64 / bins as f64).collect();
            let edge_buf = self.upload("edges", &split(&edges));
            let mut counts = vec![0u64; bins];
            for r in chunks(values.len(), chunk) {
                let scope = self.scope("histogram")?;
                let v = self.upload("values", &split(&values[r.clone()]));
                let c = self.upload("counts", &vec![0u32; bins]);
                let mut enc = self.encoder();
                let params = HistogramParams {
                    n: r.len() as u32,
                    bins: bins as u32,
                    lo: lo as f32,
                    norm: (bins as f64 / (hi - lo)) as f32,
                };
                self.dispatch_at(
                    &mut enc,
                    &SHADER,
                    "histogram",
                    &params,
                    &[(1, &v), (2, &edge_buf), (3, &c)],
                    groups_for(r.len() as u64),
                );
                let bytes = self.finish(scope, enc, &[(&c, bins as u64 * 4)]).await?;
                for (total, k) in counts.iter_mut().zip(cast::<u32>(&bytes[0])) {
                    *total += k as u64;
                }
            }
            Ok(Histogram { edges, counts })
        }

        /// Min and max of the finite values: per-workgroup candidates on the device, then the
        /// exact f64 values of the winners' neighbourhood on the host.
        async fn finite_range(&self, values: &[f64], chunk: usize) -> Result<(f64, f64), GpuError> {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for r in chunks(values.len(), chunk) {
                let scope = self.scope("histogram range")?;
                let v = self.upload("values", &split(&values[r.clone()]));
                let groups = (r.len() as u64).div_ceil(256);
                let part = self.scratch("min/max", groups * 8);
                let mut enc = self.encoder();
                let params = HistogramParams { n: r.len() as u32, ..Default::default() };
                self.dispatch_at(&mut enc, &SHADER, "minmax", &params, &[(1, &v), (4, &part)], groups_per_item(groups));
                let bytes = self.finish(scope, enc, &[(&part, groups * 8)]).await?;
                for pair in cast::<f32>(&bytes[0]).chunks(2) {
                    lo = lo.min(pair[0]);
                    hi = hi.max(pair[1]);
                }
            }
            if lo > hi {
                return Ok((0.0, 1.0));
            }
            // The f32 extremes bracket the f64 ones to within rounding: refine exactly.
            let near = |x: f64, t: f32| (x as f32) == t;
            let exact_lo =
                values.iter().copied().filter(|&x| x.is_finite() && near(x, lo)).fold(f64::INFINITY, f64::min);
            let exact_hi =
                values.iter().copied().filter(|&x| x.is_finite() && near(x, hi)).fold(f64::NEG_INFINITY, f64::max);
            Ok((exact_lo, exact_hi))
        }
    }
}
