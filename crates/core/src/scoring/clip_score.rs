//! CLIP-style scores on given embeddings: cosine, CLIP logits, CLIPScore (torchmetrics and
//! the original paper), PickScore probabilities and its tie-aware pair accuracy, HPS v2.

use crate::scoring::embedding::{dot, Embeddings};

/// Cosine similarity matrix `images × texts` of L2-normalised embeddings.
pub fn cosine_matrix(images: &Embeddings, texts: &Embeddings) -> Vec<f32> {
    let (img, txt) = (images.normalized(), texts.normalized());
    let mut out = Vec::with_capacity(img.len() * txt.len());
    for i in 0..img.len() {
        for j in 0..txt.len() {
            out.push(dot(img.row(i), txt.row(j)) as f32);
        }
    }
    out
}

/// How a preset turns one image–text cosine into its score: the epilogue the GPU similarity
/// kernel applies as `scale · cos` (or `scale · max(cos, 0)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PairScore {
    /// The plain cosine (also HPS v2's score, see [`hps`]).
    Cosine,
    /// CLIP/PickScore logits `exp(logit_scale)·cos` ([`clip_logit`]).
    Logit { logit_scale: f32 },
    /// torchmetrics' per-pair `100·cos` (its batch value clamps the mean: [`clipscore_torchmetrics`]).
    ClipScore,
    /// The original CLIPScore per pair, `2.5·max(cos, 0)` ([`clipscore_original`]).
    ClipScoreOriginal,
}

impl PairScore {
    /// `(scale, clamp_at_zero)`.
    pub fn affine(self) -> (f32, bool) {
        match self {
            PairScore::Cosine => (1.0, false),
            PairScore::Logit { logit_scale } => ((logit_scale as f64).exp() as f32, false),
            PairScore::ClipScore => (100.0, false),
            PairScore::ClipScoreOriginal => (2.5, true),
        }
    }

    pub fn apply(self, cosine: f32) -> f32 {
        match self {
            PairScore::Cosine => hps(cosine),
            PairScore::Logit { logit_scale } => clip_logit(cosine, logit_scale),
            PairScore::ClipScore => 100.0 * cosine,
            PairScore::ClipScoreOriginal => 2.5 * cosine.max(0.0),
        }
    }
}

/// Scores of every image against every text (`images × texts`, row-major).
pub fn score_matrix(images: &Embeddings, texts: &Embeddings, score: PairScore) -> Vec<f32> {
    cosine_matrix(images, texts).into_iter().map(|c| score.apply(c)).collect()
}

/// CLIP logits: `exp(logit_scale) · cos` (`logit_scale` is stored as a log).
pub fn clip_logit(cosine: f32, logit_scale: f32) -> f32 {
    ((logit_scale as f64).exp() * cosine as f64) as f32
}

/// torchmetrics' CLIPScore over matched (image, text) pairs: `max(mean(100·cos), 0)`,
/// clamped after averaging.
pub fn clipscore_torchmetrics(cosines: &[f32]) -> f32 {
    let mean = cosines.iter().map(|&c| 100.0 * c as f64).sum::<f64>() / cosines.len() as f64;
    mean.max(0.0) as f32
}

/// Original CLIPScore (Hessel et al.): per pair `2.5·max(cos, 0)`, then the mean. The paper
/// prefixes captions with [`CLIPSCORE_PREFIX`].
pub fn clipscore_original(cosines: &[f32]) -> f32 {
    (cosines.iter().map(|&c| 2.5 * (c as f64).max(0.0)).sum::<f64>() / cosines.len() as f64) as f32
}

/// The text prefix of the original CLIPScore.
pub const CLIPSCORE_PREFIX: &str = "A photo depicts ";

/// PickScore for the images of one prompt: `exp(logit_scale)·cos_j`, then softmax over j.
/// Returns (scores, probabilities).
pub fn pickscore(cosines: &[f32], logit_scale: f32) -> (Vec<f32>, Vec<f32>) {
    let scores: Vec<f32> = cosines.iter().map(|&c| clip_logit(c, logit_scale)).collect();
    let probs = softmax(&scores);
    (scores, probs)
}

/// Numerically stable softmax (max subtracted first).
pub fn softmax(xs: &[f32]) -> Vec<f32> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = xs.iter().map(|&x| ((x - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// Softmax within groups: `groups[i]` is the group of `xs[i]` (any order).
pub fn grouped_softmax(xs: &[f32], groups: &[u32]) -> Vec<f32> {
    let n_groups = groups.iter().map(|&g| g as usize + 1).max().unwrap_or(0);
    let mut max = vec![f32::NEG_INFINITY; n_groups];
    for (&x, &g) in xs.iter().zip(groups) {
        max[g as usize] = max[g as usize].max(x);
    }
    let mut sum = vec![0f64; n_groups];
    let exps: Vec<f64> = xs
        .iter()
        .zip(groups)
        .map(|(&x, &g)| {
            let e = ((x - max[g as usize]) as f64).exp();
            sum[g as usize] += e;
            e
        })
        .collect();
    exps.iter().zip(groups).map(|(e, &g)| (e / sum[g as usize]) as f32).collect()
}

/// 1-based rank of each score within its group, highest first; ties share the better rank
/// order by position (stable), so ranks within a group are a permutation of 1..=n.
pub fn grouped_ranks(xs: &[f32], groups: &[u32]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| groups[a].cmp(&groups[b]).then(xs[b].total_cmp(&xs[a])).then(a.cmp(&b)));
    let mut ranks = vec![0; xs.len()];
    let mut prev_group = None;
    let mut rank = 0;
    for i in order {
        if prev_group != Some(groups[i]) {
            prev_group = Some(groups[i]);
            rank = 0;
        }
        rank += 1;
        ranks[i] = rank;
    }
    ranks
}

/// HPS v2 / v2.1 score: the plain cosine (its benchmark reports `100·s`).
pub fn hps(cosine: f32) -> f32 {
    cosine
}

/// PickScore's evaluation of one labelled pair. `p0`, `p1` are the model's probabilities for
/// images 0 and 1; `label_0` is 1, 0 or 0.5 (tie). The prediction is a tie when
/// `|p1 − p0| ≤ threshold`. Gives 1 for a match, 0.5 when either side is a tie, else 0.
pub fn pick_pair_accuracy(p0: f32, p1: f32, label_0: f32, threshold: f32) -> f32 {
    let predicted = if (p1 - p0).abs() <= threshold {
        0.5
    } else if p0 > p1 {
        1.0
    } else {
        0.0
    };
    if predicted == label_0 {
        1.0
    } else if predicted == 0.5 || label_0 == 0.5 {
        0.5
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_accuracy_counts_ties_as_half() {
        assert_eq!(pick_pair_accuracy(0.7, 0.3, 1.0, 0.1), 1.0);
        assert_eq!(pick_pair_accuracy(0.7, 0.3, 0.0, 0.1), 0.0);
        assert_eq!(pick_pair_accuracy(0.52, 0.48, 1.0, 0.1), 0.5);
        assert_eq!(pick_pair_accuracy(0.52, 0.48, 0.5, 0.1), 1.0);
        assert_eq!(pick_pair_accuracy(0.9, 0.1, 0.5, 0.1), 0.5);
    }

    #[test]
    fn grouped_softmax_and_ranks_respect_groups() {
        let xs = [1.0, 3.0, 2.0, 0.0, 5.0];
        let g = [0, 1, 0, 1, 2];
        let p = grouped_softmax(&xs, &g);
        assert!((p[0] + p[2] - 1.0).abs() < 1e-6 && (p[1] + p[3] - 1.0).abs() < 1e-6 && p[4] == 1.0);
        assert_eq!(grouped_ranks(&xs, &g), vec![2, 1, 1, 2, 1]);
        assert_eq!(grouped_ranks(&[1.0, 1.0], &[0, 0]), vec![1, 2]);
    }

    #[test]
    fn clipscore_variants_clamp_differently() {
        let c = [0.3, -0.5];
        assert_eq!(clipscore_torchmetrics(&c), 0.0);
        assert!((clipscore_original(&c) - 0.375).abs() < 1e-6);
    }
}
