//! `prefscope strength`: each pair's preference strength from an ensemble of reward models
//! (Secrets of RLHF II, Eq. 4) and its band, to find the labels that are probably wrong.

use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use prefscope_core::io::read::read_ensemble;
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::preference::strength::{bands, check_bands, pair_strength, Band, DEFAULT_BANDS};
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
    #[arg(long, value_enum, default_value = "json")]
    pub format: OutputFormat,
    /// Output file (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &StrengthArgs) -> Result<()> {
    let edges = check_bands(&args.bands)?;
    let name = args.input.display().to_string();
    let bytes = std::fs::read(&args.input).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let rows = read_ensemble(&name, Bytes::from(bytes))?;
    let (mean, std): (Vec<f64>, Vec<f64>) = rows.iter().map(|r| pair_strength(&r.chosen, &r.rejected)).unzip();
    let band = bands(&mean, edges);
    let mut summary = serde_json::Map::new();
    summary.insert("pairs".into(), json!(rows.len()));
    for b in Band::ALL {
        summary.insert(b.name().into(), json!(band.iter().filter(|x| **x == b).count()));
    }
    let table = OutputTable::new(vec![
        ("id".into(), Column::Text(rows.into_iter().map(|r| r.id).collect())),
        ("mean".into(), Column::Float(mean)),
        ("std".into(), Column::Float(std)),
        ("band".into(), Column::Text(band.iter().map(|b| b.name().to_string()).collect())),
    ]);
    write_summarised(args.format, args.out.as_ref(), serde_json::Value::Object(summary), &table)
}
