//! The DPO demo's bundled export: held-out pairs of a caption model trained with DPO in burn
//! (`train::dpo_run`, reproduced by `cargo xtask train-dpo-demo`), at the end of training and at
//! an early checkpoint (its training.json beside them); and the summary `prefscope demo --dpo`
//! prints and training.json records.

use bytes::Bytes;
use prefscope_core::io::read::{read_preferences, Format, Input, Preferences};
use prefscope_core::preference::report::{report, ReportRequest};
use prefscope_core::preference::tokens::{pair_token_rewards, DifferingReward};
use prefscope_core::DpoTable;
use serde::{Deserialize, Serialize};

/// Held-out pairs after the whole DPO budget.
pub const FINAL: &str = include_str!("../dpo-demo/heldout.jsonl");
/// The same pairs at the early checkpoint.
pub const EARLY: &str = include_str!("../dpo-demo/heldout_early.jsonl");
/// β the policy was trained with.
pub const BETA: f64 = 0.1;

/// One of the bundled exports as a table.
pub fn table(early: bool) -> Result<DpoTable, String> {
    let (name, text) = if early { ("heldout_early.jsonl", EARLY) } else { ("heldout.jsonl", FINAL) };
    parse(name, text)
}

fn parse(name: &'static str, text: &'static str) -> Result<DpoTable, String> {
    let input = Input::Bytes { name, bytes: Bytes::from_static(text.as_bytes()) };
    match read_preferences(input, Some(Format::Jsonl), &mut |_| {}).map_err(|e| e.to_string())? {
        Preferences::Dpo(t) => Ok(t),
        Preferences::Diffusion(_) | Preferences::Unpaired(_) => Err(format!("{name} is not DPO pairs")),
    }
}

/// What the run is checked against (issue 7): rewards and rankings against the reference's,
/// and where the per-token implicit reward sits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub pairs: usize,
    pub beta: f64,
    /// TRL's `rewards/accuracies`: share of pairs with a positive implicit-reward margin.
    pub reward_accuracy: f64,
    /// TRL's `rewards/margins`.
    pub reward_margin: f64,
    /// The DPO sigmoid loss.
    pub loss: f64,
    /// Chen et al.'s ranking accuracy of the policy: `πθ(chosen) ≥ πθ(rejected)`.
    pub ranking_accuracy: f64,
    /// The same for the reference, where training started.
    pub reference_ranking_accuracy: f64,
    /// What a DPO-optimal policy at β reaches from this reference and these rater shares.
    pub idealized_ranking_accuracy: f64,
    /// Mean over pairs of the share of |per-token reward| carried by the differing token.
    pub differing_token_share: f64,
    /// The same pooled over all pairs (Σ differing / Σ total).
    pub differing_token_share_pooled: f64,
}

/// The summary of a DPO table that has per-token arrays and rater shares.
pub fn summarize(table: &DpoTable, beta: f64) -> Result<Summary, String> {
    let request = ReportRequest { beta: Some(beta), ..ReportRequest::default() };
    let data = Preferences::Dpo(table.clone());
    let metrics = report(&data, &request).map_err(|e| e.to_string())?.evaluation.metrics;
    let get = |k: &str| metrics.get(k).copied().ok_or_else(|| format!("the report has no {k}"));
    let (mut shares, mut pooled) = (Vec::new(), DifferingReward::default());
    for i in 0..table.len() {
        let (c, r) = (&table.chosen_tokens, &table.rejected_tokens);
        let (Some(ct), Some(rt)) = (c.tokens.get(i), r.tokens.get(i)) else {
            return Err(format!("pair {} has no token strings", table.id[i]));
        };
        let split = DifferingReward::of(ct, rt, &pair_token_rewards(c, i, beta), &pair_token_rewards(r, i, beta));
        pooled.differing += split.differing;
        pooled.total += split.total;
        shares.extend(split.share());
    }
    let reference = prefscope_core::preference::ranking::ranking_accuracy(
        &table.reference_chosen_logps,
        &table.reference_rejected_logps,
    );
    Ok(Summary {
        pairs: table.len(),
        beta,
        reward_accuracy: get("rewards/accuracies")?,
        reward_margin: get("rewards/margins")?,
        loss: get("loss")?,
        ranking_accuracy: get("ranking/accuracy")?,
        reference_ranking_accuracy: reference,
        idealized_ranking_accuracy: get("ranking/idealized_accuracy")?,
        differing_token_share: shares.iter().sum::<f64>() / shares.len().max(1) as f64,
        differing_token_share_pooled: pooled.share().unwrap_or(0.0),
    })
}
