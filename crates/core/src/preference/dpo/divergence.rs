//! The f-divergence regularisers of the pairwise losses: which function of the log-ratio
//! stands in for it. Shared by the loss formulas (`pairwise.rs`) and the columnar pass
//! (`block.rs`).

use crate::error::ConfigError;
use crate::numeric::log_sigmoid;

/// f-divergence regularisers (TRL's `f_divergence_type`): each maps a log-ratio to a score.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum FDivergence {
    #[default]
    ReverseKl,
    ForwardKl,
    JsDivergence,
    /// α-divergence with its coefficient (TRL's default 0.5).
    AlphaDivergence(f64),
}

impl FDivergence {
    pub fn parse(name: &str, alpha: f64) -> Result<Self, ConfigError> {
        Ok(match name {
            "reverse_kl" => FDivergence::ReverseKl,
            "forward_kl" => FDivergence::ForwardKl,
            "js_divergence" => FDivergence::JsDivergence,
            "alpha_divergence" if alpha.is_finite() => FDivergence::AlphaDivergence(alpha),
            "alpha_divergence" => {
                return Err(ConfigError::Invalid(format!("the alpha-divergence's alpha must be finite, got {alpha}")))
            }
            other => return Err(ConfigError::Invalid(format!("unknown f-divergence `{other}`"))),
        })
    }

    /// `f'(t)` at `t = exp(logratio)`, as TRL 1.16 computes it.
    pub fn score(self, logratio: f64) -> f64 {
        match self {
            FDivergence::ReverseKl => logratio,
            FDivergence::ForwardKl => 1.0 - (-logratio).exp(),
            FDivergence::JsDivergence => std::f64::consts::LN_2 + log_sigmoid(logratio),
            FDivergence::AlphaDivergence(a) if (a - 1.0).abs() < 1e-6 => logratio,
            FDivergence::AlphaDivergence(a) => {
                // TRL clamps the exponent at 80 so float32 stays finite; keep its numbers.
                let t = ((a - 1.0) * logratio).min(80.0);
                t.exp_m1() / (a - 1.0)
            }
        }
    }
}
