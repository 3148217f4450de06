//! `prefscope strength`: each pair's preference strength from an ensemble of reward models
//! (Secrets of RLHF II, Eq. 4) and its band, to find the labels that are probably wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use prefscope_core::io::read::{read_ensemble, EnsembleRow};
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::preference::strength::{check_bands, Band, StrengthReport, DEFAULT_BANDS};
use prefscope_core::preference::subsets::{group_labels, mean_over_subsets, By};
use serde_json::json;

use crate::output::{write_summarised, OutputFormat, Result};

#[derive(Args, Debug)]
pub struct StrengthArgs {
    /// JSON Lines or Parquet rows: `id`, `chosen_rewards` and `rejected_rewards` (arrays of the
    /// same M ≥ 2 scores, one per reward model).
    #[arg(long)]
    pub input: PathBuf,
    /// Percentiles of the mean reward difference that end `likely_wrong`, `ambiguous` and
    /// `clear` (above the last: `strongest`).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_BANDS.to_vec(), allow_hyphen_values = true)]
    pub bands: Vec<f64>,
    /// Equal-width bins of the calibration of σ(mean difference).
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Also summarise each value of the `subset` or `category` column alone.
    #[arg(long, value_parser = ["subset", "category"])]
    pub by: Option<String>,
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Output file (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The summary as JSON: counts as whole numbers, undefined metrics as null.
fn summary_json(summary: &BTreeMap<String, f64>) -> serde_json::Value {
    let integral = |k: &str| k == "pairs" || Band::ALL.iter().any(|b| b.name() == k);
    summary
        .iter()
        .map(|(k, &v)| {
            let v = if integral(k) {
                json!(v as u64)
            } else {
                serde_json::Number::from_f64(v).map_or(json!(null), Into::into)
            };
            (k.clone(), v)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn run(args: &StrengthArgs) -> Result<()> {
    let edges = check_bands(&args.bands)?;
    let by = args.by.as_deref().map(By::parse).transpose()?;
    let name = args.input.display().to_string();
    let bytes = std::fs::read(&args.input).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let rows = read_ensemble(&name, Bytes::from(bytes))?;
    let report = StrengthReport::new(&rows, edges, args.bins)?;
    let mut summary = summary_json(&report.summary());
    summary["calibration"] = report.calibration.json();
    if let Some(by) = by {
        let labels = rows.iter().map(|r| match by {
            By::Subset => r.subset.as_ref(),
            By::Category => r.category.as_ref(),
        });
        let mut subsets = BTreeMap::new();
        for (subset, indices) in group_labels(&name, by, labels)? {
            let part: Vec<EnsembleRow> = indices.iter().map(|&i| rows[i].clone()).collect();
            subsets.insert(subset, StrengthReport::new(&part, edges, args.bins)?.summary());
        }
        let mean = mean_over_subsets(&subsets);
        summary["subsets"] =
            subsets.iter().map(|(k, m)| (k.clone(), summary_json(m))).collect::<serde_json::Map<_, _>>().into();
        summary["subsets_mean"] = prefscope_core::io::write::metrics_json(&mean);
    }
    let table = OutputTable::new(vec![
        ("id".into(), Column::Text(rows.into_iter().map(|r| r.id).collect())),
        ("mean".into(), Column::Float(report.mean)),
        ("std".into(), Column::Float(report.std)),
        ("band".into(), Column::Text(report.band.iter().map(|b| b.name().to_string()).collect())),
    ]);
    write_summarised(args.format, args.out.as_ref(), summary, &table)
}
