//! Softmax and ranks within groups (PickScore's per-prompt probabilities, per-prompt
//! rankings). Twins of `prefscope_core::scoring::clip_score::{grouped_softmax, grouped_ranks}`.

use crate::kernel::{shader, Shader};

pub(crate) const SHADER: Shader = shader!("groups");

/// Members gathered by group with a stable counting sort (ties keep their order by position):
/// group `g` owns `order[offsets[g]..offsets[g + 1]]`, the members' original positions.
pub(crate) fn group_order(groups: &[u32]) -> (Vec<u32>, Vec<usize>) {
    let n_groups = groups.iter().map(|&g| g as usize + 1).max().unwrap_or(0);
    let mut offsets = vec![0u32; n_groups + 1];
    for &g in groups {
        offsets[g as usize + 1] += 1;
    }
    for g in 0..n_groups {
        offsets[g + 1] += offsets[g];
    }
    let mut next = offsets.clone();
    let mut order = vec![0usize; groups.len()];
    for (i, &g) in groups.iter().enumerate() {
        order[next[g as usize] as usize] = i;
        next[g as usize] += 1;
    }
    (offsets, order)
}

/// Softmax and ranks as a call of their own, for the kernel's twin tests (the `testing`
/// feature): the product runs the kernel inside a manifest's scoring pass (`scoring.rs`).
#[cfg(feature = "testing")]
mod standalone {
    use super::{group_order, SHADER};
    use crate::kernel::{cast, groups_per_item};
    use crate::params::GroupsParams;
    use crate::{Gpu, GpuError};

    /// Per-element results, in the caller's order.
    #[derive(Debug, Clone, PartialEq, Default)]
    pub struct GroupedScores {
        pub probabilities: Vec<f32>,
        pub ranks: Vec<u32>,
    }

    impl Gpu {
        /// `groups[i]` is the group of `xs[i]` (any order, as in core). Members are gathered by a
        /// stable counting sort, so ties keep their order by position.
        pub async fn grouped_softmax_ranks(&self, xs: &[f32], groups: &[u32]) -> Result<GroupedScores, GpuError> {
            if xs.len() != groups.len() {
                return Err(GpuError::Shape(format!("{} scores but {} group ids", xs.len(), groups.len())));
            }
            let (offsets, order) = group_order(groups);
            let n_groups = offsets.len() - 1;
            let sorted: Vec<f32> = order.iter().map(|&i| xs[i]).collect();
            let mut out = GroupedScores { probabilities: vec![0.0; xs.len()], ranks: vec![0; xs.len()] };
            // Whole groups per chunk, each chunk's members within one binding.
            let cap = self.items_per_binding(4) as u32;
            let mut g0 = 0;
            while g0 < n_groups {
                let start = offsets[g0];
                self.check_fits(|| format!("group {g0}"), (offsets[g0 + 1] - start) as u64 * 4)?;
                let mut g1 = g0 + 1;
                while g1 < n_groups && offsets[g1 + 1] - start <= cap && g1 - g0 + 2 <= cap as usize {
                    g1 += 1;
                }
                let (p, r) = self.groups_chunk(&offsets[g0..=g1], &sorted).await?;
                for (k, (p, r)) in p.into_iter().zip(r).enumerate() {
                    let i = order[start as usize + k];
                    out.probabilities[i] = p;
                    out.ranks[i] = r;
                }
                g0 = g1;
            }
            Ok(out)
        }

        async fn groups_chunk(&self, offsets: &[u32], sorted: &[f32]) -> Result<(Vec<f32>, Vec<u32>), GpuError> {
            let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
            let local: Vec<u32> = offsets.iter().map(|o| o - offsets[0]).collect();
            let n = end - start;
            let scope = self.scope("grouped softmax")?;
            let off = self.upload("offsets", &local);
            let x = self.upload("scores", &sorted[start..end]);
            let prob = self.scratch("probabilities", n as u64 * 4);
            let rank = self.scratch("ranks", n as u64 * 4);
            let mut enc = self.encoder();
            let groups = (offsets.len() - 1) as u64;
            let params = GroupsParams { groups: groups as u32 };
            self.dispatch(
                &mut enc,
                &SHADER,
                "softmax_ranks",
                &params,
                &[&off, &x, &prob, &rank],
                groups_per_item(groups),
            );
            let bytes = self.finish(scope, enc, &[(&prob, n as u64 * 4), (&rank, n as u64 * 4)]).await?;
            Ok((cast(&bytes[0]), cast(&bytes[1])))
        }
    }
}

#[cfg(feature = "testing")]
pub use standalone::GroupedScores;
