//! `prefscope pairs`: PickScore's evaluation of Pick-a-Pic style labelled pairs (the Pairs
//! view's numbers): `p0`, `p1` per pair, accuracy with ties counted half, agreement.

use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use prefscope_clip::pairs::{ensemble_differences, pair_probabilities, pair_report, predicted, PairProbabilities};
use prefscope_clip::scorer::Scorer;
use prefscope_clip::Rgba;
use prefscope_core::io::read::read_pairs;
use prefscope_core::io::record::ImageRef;
use prefscope_core::io::write::{metrics_json, Column, OutputTable};
use prefscope_core::preference::strength::{bands, check_bands, pair_strength, Band};
use prefscope_core::preference::subsets::{group_labels, mean_over_subsets, By};
use prefscope_gpu::block_on;

use crate::clip::{load, ModelArgs};
use crate::output::{metrics_summary, write_document, Result};
use prefscope_clip::pipeline::resolve;

#[derive(Args, Debug)]
pub struct PairsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Pairs in JSON Lines or Parquet: `caption`, `jpg_0`, `jpg_1` (bytes or paths, relative
    /// to the file's folder), `label_0` (1, 0 or 0.5).
    #[arg(long)]
    pub input: PathBuf,
    /// The model predicts a tie when |p1 − p0| is at most this (PickScore's evaluation).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub tie_threshold: f32,
    /// Preference strength from an ensemble of two or more scorers (presets of the model, each
    /// scoring by its cosine): adds `strength_mean`, `strength_std` and `band` to every pair
    /// and the band counts to the metrics. `--strength clip,hps,clipscore-original`.
    #[arg(long, value_delimiter = ',')]
    pub strength: Option<Vec<String>>,
    /// Percentiles of the strength that end `likely_wrong`, `ambiguous` and `clear`.
    #[arg(long, value_delimiter = ',', default_values_t = prefscope_core::preference::strength::DEFAULT_BANDS.to_vec(), allow_hyphen_values = true)]
    pub bands: Vec<f64>,
    /// Equal-width bins of the calibration of `p0` against `label_0`.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Also report the metrics of each value of the `subset` or `category` column alone.
    #[arg(long, value_parser = ["subset", "category"])]
    pub by: Option<String>,
}

pub fn run(args: &PairsArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.tie_threshold) {
        return Err(format!(
            "--tie-threshold must lie in [0, 1] (a difference of probabilities), got {}",
            args.tie_threshold
        )
        .into());
    }
    let limits = args.model.limits();
    let name = args.input.display().to_string();
    let bytes = std::fs::read(&args.input).map_err(|e| format!("{name}: {e}"))?;
    let pairs = read_pairs(&name, Bytes::from(bytes))?;
    let image = |r: &ImageRef, row: usize, column: &str| -> Result<Rgba> {
        let label = format!("{name} row {} {column}", row + 1);
        Ok(match r {
            ImageRef::Bytes(b) => Rgba::decode_limited(&label, b, &limits)?,
            ImageRef::Path(p) => Rgba::open(&resolve(&args.input, p), &limits)?,
        })
    };
    let mut images = Vec::with_capacity(2 * pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        images.push(image(&p.jpg_0, i, "jpg_0")?);
        images.push(image(&p.jpg_1, i, "jpg_1")?);
    }
    let encoder = load(&args.model)?;
    let captions: Vec<String> = pairs.iter().map(|p| p.caption.clone()).collect();
    let labels: Vec<f32> = pairs.iter().map(|p| p.label_0 as f32).collect();
    let probs = block_on(pair_probabilities(&encoder, &captions, &images, &labels))?;
    let (mut metrics, calibration) = pair_report(&probs, args.tie_threshold, args.bins)?;
    let mut document = serde_json::Map::new();
    document.insert("calibration".into(), calibration.json());
    if let Some(by) = args.by.as_deref().map(By::parse).transpose()? {
        let labels = pairs.iter().map(|p| match by {
            By::Subset => p.subset.as_ref(),
            By::Category => p.category.as_ref(),
        });
        let mut subsets = std::collections::BTreeMap::new();
        for (subset, indices) in group_labels(&name, by, labels)? {
            let part: Vec<PairProbabilities> = indices.iter().map(|&i| probs[i].clone()).collect();
            subsets.insert(subset, pair_report(&part, args.tie_threshold, args.bins)?.0);
        }
        document.insert("subsets_mean".into(), metrics_json(&mean_over_subsets(&subsets)));
        document.insert(
            "subsets".into(),
            subsets.iter().map(|(k, m)| (k.clone(), metrics_json(m))).collect::<serde_json::Map<_, _>>().into(),
        );
    }
    let strength = match &args.strength {
        Some(names) => {
            let edges = check_bands(&args.bands)?;
            let scorers = names.iter().map(|n| Scorer::parse(n.trim())).collect::<std::result::Result<Vec<_>, _>>()?;
            let d = block_on(ensemble_differences(&encoder, &captions, &images, &labels, &scorers))?;
            let (mean, std): (Vec<f64>, Vec<f64>) = d.iter().map(|(c, r)| pair_strength(c, r)).unzip();
            let band = bands(&mean, edges);
            for b in Band::ALL {
                metrics.insert(format!("strength/{}", b.name()), band.iter().filter(|x| **x == b).count() as f64);
            }
            Some((mean, std, band))
        }
        None => None,
    };
    let f = |g: fn(&prefscope_clip::pairs::PairProbabilities) -> f32| {
        Column::Float(probs.iter().map(|p| g(p) as f64).collect())
    };
    let mut columns = vec![
        ("caption".into(), Column::Text(captions)),
        ("p0".into(), f(|p| p.p0)),
        ("p1".into(), f(|p| p.p1)),
        ("label_0".into(), f(|p| p.label_0)),
        ("predicted".into(), Column::Float(probs.iter().map(|p| predicted(p, args.tie_threshold) as f64).collect())),
    ];
    if let Some((mean, std, band)) = strength {
        columns.push(("strength_mean".into(), Column::Float(mean)));
        columns.push(("strength_std".into(), Column::Float(std)));
        columns.push(("band".into(), Column::Text(band.iter().map(|b| b.name().to_string()).collect())));
    }
    let table = OutputTable::new(columns);
    document.insert("metrics".into(), metrics_json(&metrics));
    document.insert("pairs".into(), table.json_rows());
    write_document(args.model.format, args.model.out.as_ref(), &table, document.into(), &metrics_summary(&metrics))
}
