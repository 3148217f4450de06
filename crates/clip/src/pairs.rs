//! Labelled pairs, PickScore's evaluation: for each caption, the softmax of the two images'
//! logits gives `p0`, `p1`; the model predicts a tie when they are within the threshold, and a
//! pair scores 1 for a match, 0.5 when either side is a tie, 0 otherwise
//! (prefscope-core's `pick_pair_accuracy`). The towers run once; the threshold is free after.

use std::collections::BTreeMap;

use prefscope_core::scoring::clip_score::{pick_pair_accuracy, pickscore};
use prefscope_core::scoring::embedding::dot;

use crate::encoder::Encoder;
use crate::error::ClipError;
use crate::image::Rgba;
use crate::scorer::Scorer;

/// The model's view of one pair, before a tie threshold is applied.
#[derive(Clone, Debug, PartialEq)]
pub struct PairProbabilities {
    pub caption: String,
    pub p0: f32,
    pub p1: f32,
    pub label_0: f32,
}

/// One caption, one label and two images per pair.
fn check_pairs(captions: &[String], images: &[Rgba], labels: &[f32]) -> Result<(), ClipError> {
    if images.len() != 2 * captions.len() || labels.len() != captions.len() {
        return Err(ClipError::Input(format!(
            "{} captions, {} labels and {} images: every pair needs one caption, one label and two images",
            captions.len(),
            labels.len(),
            images.len()
        )));
    }
    Ok(())
}

/// `p0`, `p1` for every pair: images `2i`, `2i + 1` of `images` are pair `i`'s.
pub async fn pair_probabilities(
    encoder: &Encoder,
    captions: &[String],
    images: &[Rgba],
    labels: &[f32],
) -> Result<Vec<PairProbabilities>, ClipError> {
    check_pairs(captions, images, labels)?;
    let mut distinct: Vec<String> = Vec::new();
    let index: Vec<usize> = captions
        .iter()
        .map(|c| match distinct.iter().position(|d| d == c) {
            Some(i) => i,
            None => {
                distinct.push(c.clone());
                distinct.len() - 1
            }
        })
        .collect();
    let texts = encoder.embed_texts(&distinct).await?;
    let embedded = encoder.embed_images(images, None).await?;
    let scale = encoder.logit_scale();
    Ok((0..captions.len())
        .map(|i| {
            let t = &texts[index[i]].vector;
            let cosines = [dot(t, embedded.row(2 * i)) as f32, dot(t, embedded.row(2 * i + 1)) as f32];
            let (_, p) = pickscore(&cosines, scale);
            PairProbabilities { caption: captions[i].clone(), p0: p[0], p1: p[1], label_0: labels[i] }
        })
        .collect())
}

/// The Pairs view's ensemble: the model under three scorers that differ in preprocessing (crop,
/// longest-side pad) and text template (CLIPScore's "A photo depicts ").
pub const STRENGTH_SCORERS: [Scorer; 3] = [Scorer::Clip, Scorer::Hps, Scorer::ClipScoreOriginal];

/// Each pair's reward differences under an ensemble of scorers (image 0 taken as the chosen
/// one when `label_0` is 1 or 0.5, image 1 when it is 0): scorer m's reward of an image is the
/// cosine of the caption (with the scorer's text template) and the image (with its
/// preprocessing), so every member is in the same units. The strength of a pair is the mean of
/// its row (`prefscope_core::preference::strength::pair_strength`).
pub async fn ensemble_differences(
    encoder: &Encoder,
    captions: &[String],
    images: &[Rgba],
    labels: &[f32],
    scorers: &[Scorer],
) -> Result<Vec<(Vec<f64>, Vec<f64>)>, ClipError> {
    check_pairs(captions, images, labels)?;
    if scorers.len() < 2 {
        return Err(ClipError::Input(format!(
            "{} scorer given: preference strength needs an ensemble of at least two",
            scorers.len()
        )));
    }
    let mut out = vec![(Vec::with_capacity(scorers.len()), Vec::with_capacity(scorers.len())); captions.len()];
    for &scorer in scorers {
        let texts: Vec<String> = captions.iter().map(|c| scorer.text(c)).collect();
        let texts = encoder.embed_texts(&texts).await?;
        let embedded = encoder.embed_images(images, Some(&scorer.preset(encoder.preset()))).await?;
        for (i, row) in out.iter_mut().enumerate() {
            let t = &texts[i].vector;
            let (a, b) = (dot(t, embedded.row(2 * i)), dot(t, embedded.row(2 * i + 1)));
            let (chosen, rejected) = if labels[i] == 0.0 { (b, a) } else { (a, b) };
            row.0.push(chosen);
            row.1.push(rejected);
        }
    }
    Ok(out)
}

/// The model's call on a pair at `threshold`: 1 (image 0), 0 (image 1) or 0.5 (a tie).
pub fn predicted(p: &PairProbabilities, threshold: f32) -> f32 {
    if (p.p1 - p.p0).abs() <= threshold {
        0.5
    } else if p.p0 > p.p1 {
        1.0
    } else {
        0.0
    }
}

/// Metrics at `threshold`: `accuracy` (PickScore's, ties counted half), `agreement` (share of
/// pairs with a strict label where the model prefers the same image, ignoring the threshold),
/// `predicted_ties`, `labelled_ties`, `pairs`.
pub fn pair_metrics(pairs: &[PairProbabilities], threshold: f32) -> BTreeMap<String, f64> {
    let n = pairs.len().max(1) as f64;
    let accuracy = pairs.iter().map(|p| pick_pair_accuracy(p.p0, p.p1, p.label_0, threshold) as f64).sum::<f64>() / n;
    let strict: Vec<&PairProbabilities> = pairs.iter().filter(|p| p.label_0 != 0.5).collect();
    let agree = strict.iter().filter(|p| (p.p0 > p.p1) == (p.label_0 == 1.0)).count() as f64;
    let mut m = BTreeMap::new();
    m.insert("accuracy".to_string(), accuracy);
    m.insert("agreement".to_string(), if strict.is_empty() { f64::NAN } else { agree / strict.len() as f64 });
    m.insert("predicted_ties".to_string(), pairs.iter().filter(|p| predicted(p, threshold) == 0.5).count() as f64);
    m.insert("labelled_ties".to_string(), pairs.iter().filter(|p| p.label_0 == 0.5).count() as f64);
    m.insert("pairs".to_string(), pairs.len() as f64);
    m
}

/// The calibration of the scorer's pair probability `p0` (image 0 wins) against `label_0`
/// (a tie's 0.5 is a target of ½), over both orders of each pair.
pub fn pair_calibration(
    pairs: &[PairProbabilities],
    bins: usize,
) -> Result<prefscope_core::preference::calibration::Calibration, prefscope_core::ConfigError> {
    let p: Vec<f64> = pairs.iter().map(|p| p.p0 as f64).collect();
    let target: Vec<f64> = pairs.iter().map(|p| p.label_0 as f64).collect();
    prefscope_core::preference::calibration::calibration(&p, Some(&target), bins)
}

/// [`pair_metrics`] with the calibration's `calibration/ece` and `calibration/brier`.
pub fn pair_report(
    pairs: &[PairProbabilities],
    threshold: f32,
    bins: usize,
) -> Result<(BTreeMap<String, f64>, prefscope_core::preference::calibration::Calibration), prefscope_core::ConfigError>
{
    let mut metrics = pair_metrics(pairs, threshold);
    let calibration = pair_calibration(pairs, bins)?;
    calibration.insert_metrics(&mut metrics);
    Ok((metrics, calibration))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(p0: f32, label_0: f32) -> PairProbabilities {
        PairProbabilities { caption: String::new(), p0, p1: 1.0 - p0, label_0 }
    }

    #[test]
    fn ties_count_half_and_agreement_ignores_them() {
        let pairs = [pair(0.9, 1.0), pair(0.2, 1.0), pair(0.52, 0.5), pair(0.48, 0.0)];
        let m = pair_metrics(&pairs, 0.05);
        // 1 + 0 + 1 (tie predicted and labelled) + 0.5 (tie predicted, label 0) = 2.5.
        assert_eq!(m["accuracy"], 2.5 / 4.0);
        assert_eq!(m["agreement"], 2.0 / 3.0);
        assert_eq!((m["predicted_ties"], m["labelled_ties"]), (2.0, 1.0));
        assert_eq!(pair_metrics(&pairs, 0.0)["predicted_ties"], 0.0);
    }
}
