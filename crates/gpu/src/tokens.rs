//! Per-token rewards and segmented sums over ragged token arrays (compressed rows). Twins of
//! `prefscope_core::preference::tokens::{token_rewards, segment_sums}`.

use prefscope_core::io::record::TokenColumn;

use crate::kernel::{cast, groups_per_item, shader, Shader};
use crate::params::TokensParams;
use crate::{Gpu, GpuError};

const SHADER: Shader = shader!("tokens");

/// Rewards of every token and their sum per sequence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenRewards {
    pub per_token: Vec<f32>,
    pub per_sequence: Vec<f32>,
}

impl Gpu {
    /// `β(logπ_t − logπref_t)` for every token of a column, and each sequence's total.
    pub async fn token_rewards(&self, column: &TokenColumn, beta: f64) -> Result<TokenRewards, GpuError> {
        let offsets = column.offsets();
        let policy: Vec<f32> = column.policy.iter().map(|&v| v as f32).collect();
        let reference: Vec<f32> = column.reference.iter().map(|&v| v as f32).collect();
        self.token_rewards_f32(&policy, &reference, &offsets, beta as f32).await
    }

    /// [`Gpu::token_rewards`] on plain f32 columns: sequence `s` owns tokens
    /// `offsets[s]..offsets[s+1]`.
    pub async fn token_rewards_f32(
        &self,
        policy: &[f32],
        reference: &[f32],
        offsets: &[usize],
        beta: f32,
    ) -> Result<TokenRewards, GpuError> {
        if reference.len() != policy.len() {
            return Err(GpuError::Shape(format!(
                "{} policy but {} reference token log-probs",
                policy.len(),
                reference.len()
            )));
        }
        let (per_token, per_sequence) = self.segmented(policy, Some(reference), offsets, beta).await?;
        Ok(TokenRewards { per_token, per_sequence })
    }

    /// Sum of `values` over each segment (twin of `tokens::segment_sums`).
    pub async fn segment_sums(&self, values: &[f64], offsets: &[usize]) -> Result<Vec<f64>, GpuError> {
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        let (_, sums) = self.segmented(&v, None, offsets, 1.0).await?;
        Ok(sums.into_iter().map(f64::from).collect())
    }

    async fn segmented(
        &self,
        policy: &[f32],
        reference: Option<&[f32]>,
        offsets: &[usize],
        beta: f32,
    ) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let segments = offsets.len().saturating_sub(1);
        if offsets.windows(2).any(|w| w[1] < w[0]) || offsets.last().is_some_and(|&e| e != policy.len()) {
            return Err(GpuError::Shape("token offsets must not fall and must end at the number of tokens".into()));
        }
        let cap = self.items_per_binding(4);
        let mut per_token = Vec::with_capacity(if reference.is_some() { policy.len() } else { 0 });
        let mut sums = Vec::with_capacity(segments);
        let mut s0 = 0;
        while s0 < segments {
            self.check_fits(|| format!("sequence {s0}'s tokens"), (offsets[s0 + 1] - offsets[s0]) as u64 * 4)?;
            let mut s1 = s0 + 1;
            while s1 < segments && offsets[s1 + 1] - offsets[s0] <= cap && s1 - s0 + 2 <= cap {
                s1 += 1;
            }
            let (t0, t1) = (offsets[s0], offsets[s1]);
            let local: Vec<u32> = offsets[s0..=s1].iter().map(|o| (o - t0) as u32).collect();
            let tokens = (t1 - t0) as u64;
            let scope = self.scope("per-token rewards")?;
            let off = self.upload("offsets", &local);
            let pol = self.upload("policy", &policy[t0..t1]);
            let refr = match reference {
                Some(r) => self.upload("reference", &r[t0..t1]),
                None => self.scratch("unused", 4),
            };
            let out = self.scratch("per token", if reference.is_some() { tokens * 4 } else { 4 });
            let sum = self.scratch("sums", (s1 - s0) as u64 * 4);
            let mut enc = self.encoder();
            let params = TokensParams { segments: (s1 - s0) as u32, beta, rewards: reference.is_some() as u32 };
            self.dispatch(
                &mut enc,
                &SHADER,
                "segments",
                &params,
                &[&off, &pol, &refr, &out, &sum],
                groups_per_item((s1 - s0) as u64),
            );
            let mut reads = vec![(&sum, (s1 - s0) as u64 * 4)];
            if reference.is_some() {
                reads.push((&out, tokens * 4));
            }
            let bytes = self.finish(scope, enc, &reads).await?;
            sums.extend(cast::<f32>(&bytes[0]));
            if reference.is_some() {
                per_token.extend(cast::<f32>(&bytes[1]));
            }
            s0 = s1;
        }
        Ok((per_token, sums))
    }
}
