//! The DPO report of a set of pairs split into disjoint shards (files, Ray Data blocks),
//! computed shard by shard on different machines and combined into the report of the whole
//! set. Every metric of a pairwise objective is a mean over pairs and travels as a sum; the one
//! that is not, Spearman's ρ between margins and length differences, travels as its two
//! columns (16 bytes a pair) and is computed once over all of them.

use std::collections::BTreeMap;

use crate::error::ConfigError;
use crate::io::read::Preferences;
use crate::preference::calibration::Calibration;
use crate::preference::dpo::Objective;
use crate::preference::report::{report, table_lengths, ReportRequest};

/// The metric computed from gathered columns instead of sums.
pub const SPEARMAN: &str = "diagnostics/margin_length_spearman";

/// The metric computed from the calibration bins' sums (an ECE is not a mean over pairs).
pub const ECE: &str = "calibration/ece";

/// One shard's part of a report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShardSums {
    pub pairs: u64,
    /// Each mean metric times the shard's pairs.
    pub sums: BTreeMap<String, f64>,
    /// Per pair, for [`SPEARMAN`].
    pub margin: Vec<f64>,
    /// chosen_length − rejected_length per pair, when the shard knows lengths.
    pub length_difference: Option<Vec<f64>>,
    /// The calibration bins' sums (`Calibration::sums`), for [`ECE`].
    pub calibration: Vec<f64>,
}

/// Why an objective cannot be split: its per-pair terms depend on the rest of the batch.
fn refuse(what: &str) -> ConfigError {
    ConfigError::Invalid(format!(
        "{what}, so its report cannot be combined from shards; compute it on the whole set (prefscope.dpo, `prefscope dpo`)"
    ))
}

/// The shard's sums under `request`. Refused for objectives whose terms couple the pairs of a
/// batch (AOT's sorts, SFT's and the reference-free objectives' token means, KTO's and BCO's
/// batch KL) and for Diffusion-DPO rows (a pair's timesteps may span shards).
pub fn shard_sums(data: &Preferences, request: &ReportRequest) -> Result<ShardSums, ConfigError> {
    let table = match data {
        Preferences::Dpo(table) => table,
        Preferences::Diffusion(_) => {
            return Err(refuse("Diffusion-DPO rows group a pair's timesteps by id, which may span shards"))
        }
        Preferences::Unpaired(_) => return Err(refuse("KTO on unpaired rows takes its KL term per batch")),
    };
    match request.dpo_objective()? {
        Objective::Pairwise { losses, .. } => {
            if let Some((coupled, _)) = losses.iter().find(|(l, _)| l.is_batch_coupled()) {
                return Err(refuse(&format!("`{}` couples the pairs of a batch", coupled.name())));
            }
        }
        _ => return Err(refuse(&format!("`{}` averages over the whole batch", request.objective.trim()))),
    }
    let result = report(data, request)?;
    let pairs = table.len() as u64;
    let sums = result
        .metrics()
        .iter()
        .filter(|(k, _)| k.as_str() != SPEARMAN && k.as_str() != ECE)
        .map(|(k, v)| (k.clone(), v * pairs as f64))
        .collect();
    let length_difference = table_lengths(table).map(|(c, r)| c.iter().zip(&r).map(|(c, r)| c - r).collect());
    Ok(ShardSums {
        pairs,
        sums,
        margin: result.evaluation.pairs.margin.clone(),
        length_difference,
        calibration: result.calibration.sums.clone(),
    })
}

/// The whole set's metrics from its shards' sums. A metric some shard lacks (the idealized
/// accuracy where a shard has no `preference_share`, the normalised accuracy where one has no
/// lengths) is left out, as the whole-set report leaves it out when any pair lacks it.
pub fn combine(shards: &[ShardSums]) -> Result<BTreeMap<String, f64>, ConfigError> {
    let pairs: u64 = shards.iter().map(|s| s.pairs).sum();
    if pairs == 0 {
        return Err(ConfigError::Invalid("no pairs in any shard".into()));
    }
    let mut metrics = BTreeMap::new();
    if let Some(first) = shards.iter().find(|s| s.pairs > 0) {
        for key in first.sums.keys() {
            let parts: Option<Vec<f64>> =
                shards.iter().filter(|s| s.pairs > 0).map(|s| s.sums.get(key).copied()).collect();
            if let Some(parts) = parts {
                metrics.insert(key.clone(), parts.iter().sum::<f64>() / pairs as f64);
            }
        }
    }
    let mut bins = vec![0.0; shards.first().map_or(0, |s| s.calibration.len())];
    for s in shards {
        if s.calibration.len() != bins.len() {
            return Err(ConfigError::Invalid("shards with different numbers of calibration bins".into()));
        }
        bins.iter_mut().zip(&s.calibration).for_each(|(total, x)| *total += x);
    }
    let brier = metrics.get("calibration/brier").copied().unwrap_or(f64::NAN);
    metrics.insert(ECE.into(), Calibration::from_sums(&bins, brier)?.ece);
    let differences: Option<Vec<&Vec<f64>>> = shards.iter().map(|s| s.length_difference.as_ref()).collect();
    if let Some(differences) = differences {
        let margin: Vec<f64> = shards.iter().flat_map(|s| s.margin.iter().copied()).collect();
        let difference: Vec<f64> = differences.into_iter().flatten().copied().collect();
        if margin.len() != difference.len() {
            return Err(ConfigError::Invalid(format!(
                "{} margins against {} length differences",
                margin.len(),
                difference.len()
            )));
        }
        metrics.insert(SPEARMAN.into(), crate::correlation::spearman(&margin, &difference).unwrap_or(f64::NAN));
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::read::{read_preferences, Input};

    fn sample() -> crate::DpoTable {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dpo_sample.jsonl");
        match read_preferences(Input::Path(&path), None, &mut |_| {}).expect("fixture reads") {
            Preferences::Dpo(t) => t,
            _ => panic!("the fixture is DPO log-probabilities"),
        }
    }

    /// Rows `range` of `table` as a table of their own.
    fn slice(table: &crate::DpoTable, range: std::ops::Range<usize>) -> crate::DpoTable {
        let mut part = crate::DpoTable { source: table.source.clone(), ..Default::default() };
        for i in range {
            part.push(table.record(i));
        }
        part
    }

    #[test]
    fn shards_combine_into_the_whole_report() {
        let table = sample();
        let n = table.len();
        for objective in ["sigmoid", "ipo,hinge", "robust", "apo_zero"] {
            let request = ReportRequest {
                objective: objective.into(),
                params: crate::preference::dpo::PairwiseParams { label_smoothing: 0.1, ..Default::default() },
                ..Default::default()
            };
            let whole = report(&Preferences::Dpo(table.clone()), &request).expect("report").metrics().clone();
            let cuts = [0, 3, 4, n / 2, n];
            let shards: Vec<ShardSums> = cuts
                .windows(2)
                .map(|w| shard_sums(&Preferences::Dpo(slice(&table, w[0]..w[1])), &request).expect("shard"))
                .collect();
            let combined = combine(&shards).expect("combine");
            assert_eq!(combined.keys().collect::<Vec<_>>(), whole.keys().collect::<Vec<_>>(), "{objective}");
            for (k, v) in &whole {
                assert!((combined[k] - v).abs() <= 1e-12 * v.abs().max(1.0), "{objective} {k}: {} vs {v}", combined[k]);
            }
        }
    }

    #[test]
    fn coupled_objectives_are_refused_by_name() {
        let data = Preferences::Dpo(sample());
        for (objective, named) in [("aot", "`aot`"), ("sigmoid,sft", "`sft`"), ("simpo", "`simpo`"), ("kto", "`kto`")] {
            let request = ReportRequest { objective: objective.into(), ..Default::default() };
            let e = shard_sums(&data, &request).expect_err(objective).to_string();
            assert!(e.contains(named) && e.contains("whole set"), "{e}");
        }
    }
}
