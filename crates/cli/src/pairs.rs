//! `prefscope pairs`: PickScore's evaluation of Pick-a-Pic style labelled pairs (the Pairs
//! view's numbers): `p0`, `p1` per pair, accuracy with ties counted half, agreement.

use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use prefscope_clip::pairs::{ensemble_differences, pair_metrics, pair_probabilities, predicted};
use prefscope_clip::scorer::Scorer;
use prefscope_clip::Rgba;
use prefscope_core::io::read::read_pairs;
use prefscope_core::io::record::ImageRef;
use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::preference::strength::{bands, check_bands, pair_strength, Band};
use prefscope_gpu::block_on;

use crate::clip::{load, ModelArgs};
use crate::output::{write_report, Result};
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
    let mut metrics = pair_metrics(&probs, args.tie_threshold);
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
    write_report(args.model.format, args.model.out.as_ref(), &metrics, &table)
}
