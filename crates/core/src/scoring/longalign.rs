//! LongAlign's decomposition (luping-liu/LongAlign): long texts are encoded sentence by
//! sentence, and a score `t·î` splits into the part along a common text direction `u`
//! (text-irrelevant) and the rest (text-relevant).

use crate::scoring::embedding::{dot, normalize, Embeddings};

/// Default weight of the text-irrelevant part in the reweighted score.
pub const DEFAULT_REWEIGHT: f32 = 0.3;

/// Splits a text as LongAlign's `re.split(r'"!|\.|\?|;"', text)`: on `.` and `?` and on the
/// literal pairs `"!` and `;"`; pieces that are empty are dropped (whitespace-only pieces are
/// kept, as `len(sent) > 0` keeps them), each gets a trailing "."; if nothing is left the
/// whole text is the only segment.
pub fn split_segments(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Alternation order of the reference regex: `"!`, `.`, `?`, `;"`.
        let sep = if bytes[i..].starts_with(b"\"!") || bytes[i..].starts_with(b";\"") {
            2
        } else if bytes[i] == b'.' || bytes[i] == b'?' {
            1
        } else {
            0
        };
        if sep > 0 {
            pieces.push(&text[start..i]);
            i += sep;
            start = i;
        } else {
            i += 1;
        }
    }
    pieces.push(&text[start..]);
    let segments: Vec<String> = pieces.into_iter().filter(|p| !p.is_empty()).map(|p| format!("{p}.")).collect();
    if segments.is_empty() {
        vec![text.to_string()]
    } else {
        segments
    }
}

/// A long text's embedding: the mean of its L2-normalised segment embeddings, **not**
/// renormalised (as the reference averages them).
pub fn segment_average(segments: &Embeddings) -> Vec<f32> {
    let n = segments.len() as f64;
    let normalized = segments.normalized();
    (0..segments.dim)
        .map(|d| ((0..segments.len()).map(|k| normalized.row(k)[d] as f64).sum::<f64>() / n) as f32)
        .collect()
}

/// The common direction `u = normalise(mean_p t_p)` of a reference prompt set.
pub fn common_direction(texts: &Embeddings) -> Vec<f32> {
    let n = texts.len() as f64;
    let mean: Vec<f32> =
        (0..texts.dim).map(|d| ((0..texts.len()).map(|k| texts.row(k)[d] as f64).sum::<f64>() / n) as f32).collect();
    normalize(&mean)
}

/// A score split into its parts, in the units of the active preset (`scale` multiplies both:
/// `exp(logit_scale)`, 100, 2.5 or 1); `relevant + irrelevant` is the unclamped score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decomposition {
    pub relevant: f32,
    pub irrelevant: f32,
}

impl Decomposition {
    /// `relevant + w·irrelevant`.
    pub fn reweighted(&self, w: f32) -> f32 {
        self.relevant + w * self.irrelevant
    }

    pub fn score(&self) -> f32 {
        self.relevant + self.irrelevant
    }
}

/// Splits `t·î` against `u`: irrelevant `(t·u)(u·î)`, relevant `(t − (t·u)u)·î`. `text` is
/// the (possibly segment-averaged) text embedding, `image` is L2-normalised by this function.
pub fn decompose(text: &[f32], image: &[f32], u: &[f32], scale: f32) -> Decomposition {
    let img = normalize(image);
    let tu = dot(text, u);
    let ui = dot(u, &img);
    let ti = dot(text, &img);
    let irrelevant = tu * ui;
    Decomposition {
        relevant: ((ti - irrelevant) * scale as f64) as f32,
        irrelevant: (irrelevant * scale as f64) as f32,
    }
}

/// [`decompose`] for every image against every text (`images × texts`, row-major): the
/// CPU twin of the GPU decomposition kernel.
pub fn decompose_all(images: &Embeddings, texts: &Embeddings, u: &[f32], scale: f32) -> Vec<Decomposition> {
    let mut out = Vec::with_capacity(images.len() * texts.len());
    for i in 0..images.len() {
        for j in 0..texts.len() {
            out.push(decompose(texts.row(j), images.row(i), u, scale));
        }
    }
    out
}

/// Segment-averaged embeddings of several texts: `offsets[k]..offsets[k+1]` are the rows of
/// `segments` that belong to text `k` (each text at least one segment).
pub fn segment_averages(segments: &Embeddings, offsets: &[usize]) -> Embeddings {
    let rows: Vec<Vec<f32>> = offsets
        .windows(2)
        .map(|w| {
            let part = Embeddings::new(segments.dim, segments.data[w[0] * segments.dim..w[1] * segments.dim].to_vec())
                .unwrap_or_default();
            segment_average(&part)
        })
        .collect();
    Embeddings { dim: segments.dim, data: rows.concat() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_the_reference_regex() {
        assert_eq!(split_segments("A cat. A dog? Yes"), vec!["A cat.", " A dog.", " Yes."]);
        assert_eq!(split_segments("Wow\"! fine;\" end!"), vec!["Wow.", " fine.", " end!."]);
        assert_eq!(split_segments("..."), vec!["..."]);
        assert_eq!(split_segments("a;b!c"), vec!["a;b!c."]);
        assert_eq!(split_segments("one. "), vec!["one.", " ."]);
    }

    #[test]
    fn parts_sum_to_the_score() {
        let t = normalize(&[0.3, -0.2, 0.9, 0.1]);
        let u = normalize(&[1.0, 1.0, 0.0, 0.0]);
        let img = [0.5, 0.1, -0.3, 0.7];
        let d = decompose(&t, &img, &u, 100.0);
        let expected = 100.0 * dot(&t, &normalize(&img)) as f32;
        assert!((d.score() - expected).abs() < 1e-4);
        assert_eq!(d.reweighted(1.0), d.score());
    }
}
