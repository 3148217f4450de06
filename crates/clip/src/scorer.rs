//! Scorer presets (docs/FORMULAS.md "CLIP-style scores") and the scoring of a manifest: every row's
//! score, its LongAlign split against a common direction, the reweighted score, and the
//! softmax and rank within the row's group.

use std::collections::HashMap;

use prefscope_core::io::write::{Column, OutputTable};
use prefscope_core::scoring::clip_score::{grouped_ranks, grouped_softmax, PairScore};
use prefscope_core::scoring::embedding::{dot, Embeddings};
use prefscope_core::scoring::longalign::{common_direction, decompose};
use prefscope_core::scoring::preprocess::{Preset, Resize};

use prefscope_gpu::{GpuError, RowRequest};

use crate::encoder::Encoder;
use crate::error::ClipError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scorer {
    /// CLIP logits `exp(logit_scale)·cos`.
    Clip,
    /// torchmetrics' CLIPScore per pair, `100·cos` (its dataset value clamps the mean at 0).
    ClipScore,
    /// The CLIPScore paper's `2.5·max(cos, 0)`, texts prefixed with "A photo depicts ".
    ClipScoreOriginal,
    /// PickScore: logits, softmax over the images of a prompt.
    PickScore,
    /// HPS v2: the cosine, images resized on the longest side and zero-padded.
    Hps,
}

/// The prefix jmhessel/clipscore puts before every caption.
pub const CLIPSCORE_PREFIX: &str = "A photo depicts ";

impl Scorer {
    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "clip" => Scorer::Clip,
            "clipscore" => Scorer::ClipScore,
            "clipscore-original" => Scorer::ClipScoreOriginal,
            "pickscore" => Scorer::PickScore,
            "hps" => Scorer::Hps,
            other => {
                return Err(format!("unknown preset `{other}` (clip, clipscore, clipscore-original, pickscore, hps)"))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scorer::Clip => "clip",
            Scorer::ClipScore => "clipscore",
            Scorer::ClipScoreOriginal => "clipscore-original",
            Scorer::PickScore => "pickscore",
            Scorer::Hps => "hps",
        }
    }

    /// The per-pair formula, given the checkpoint's `logit_scale` (a log).
    pub fn pair_score(self, logit_scale: f32) -> PairScore {
        match self {
            Scorer::Clip | Scorer::PickScore => PairScore::Logit { logit_scale },
            Scorer::ClipScore => PairScore::ClipScore,
            Scorer::ClipScoreOriginal => PairScore::ClipScoreOriginal,
            Scorer::Hps => PairScore::Cosine,
        }
    }

    /// Image preprocessing: HPS v2's longest-side pad, otherwise the checkpoint's own.
    pub fn preset(self, checkpoint: Preset) -> Preset {
        match (self, checkpoint.resize) {
            (Scorer::Hps, Resize::ShortestEdgeCrop { crop, .. }) => {
                Preset { resize: Resize::LongestSidePad { size: crop }, ..checkpoint }
            }
            _ => checkpoint,
        }
    }

    /// The text as the preset's reference encodes it.
    pub fn text(self, prompt: &str) -> String {
        match self {
            Scorer::ClipScoreOriginal => format!("{CLIPSCORE_PREFIX}{prompt}"),
            _ => prompt.to_string(),
        }
    }
}

/// One scored manifest row (docs/DESIGN.md "prefscope score").
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRow {
    pub id: String,
    pub group: String,
    pub prompt: String,
    pub image: String,
    pub score: f32,
    pub relevant: f32,
    pub irrelevant: f32,
    pub reweighted: f32,
    pub probability: f32,
    pub rank: u32,
}

/// Where the common text direction came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    /// prefscope's bundled prompt set ([`DEFAULT_REFERENCE_PROMPTS`]).
    Bundled,
    /// Prompts the user gave.
    Prompts(Vec<String>),
}

/// The bundled reference prompt set: varied captions of the kind text-to-image benchmarks
/// use, one per line.
pub const DEFAULT_REFERENCE_PROMPTS: &str = include_str!("reference_prompts.txt");

impl Reference {
    pub fn prompts(&self) -> Vec<String> {
        match self {
            Reference::Bundled => {
                DEFAULT_REFERENCE_PROMPTS.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
            }
            Reference::Prompts(p) => p.clone(),
        }
    }
}

/// A row to score: a prompt against one of the embedded images, in a group, with an id.
pub struct Item<'a> {
    pub id: String,
    /// Rows of a group compete in the softmax and the ranking (the prompt when `None`).
    pub group: Option<String>,
    pub prompt: &'a str,
    /// Row of the image embeddings, and the name the output reports.
    pub image: usize,
    pub image_name: &'a str,
}

/// `u`: the normalised mean of the reference prompts' embeddings, as the preset encodes them.
pub async fn common_text_direction(
    encoder: &Encoder,
    scorer: Scorer,
    reference: &Reference,
) -> Result<Vec<f32>, ClipError> {
    let texts: Vec<String> = reference.prompts().iter().map(|p| scorer.text(p)).collect();
    let embedded = encoder.embed_texts(&texts).await?;
    let rows: Vec<&[f32]> = embedded.iter().map(|t| t.vector.as_slice()).collect();
    let texts =
        Embeddings::from_rows(&rows).ok_or_else(|| ClipError::Input("the reference prompt set is empty".into()))?;
    Ok(common_direction(&texts))
}

/// Prompts as a preset encodes them, each distinct prompt embedded once, so that scoring,
/// the LongAlign split and a prompt-set direction share one run of the text tower.
pub struct PromptEmbeddings {
    prompts: Vec<String>,
    index: HashMap<String, usize>,
    /// One row per distinct prompt (segment averages for long prompts, not renormalised).
    pub embeddings: Embeddings,
    /// LongAlign segments each prompt was encoded in (1 when it fits the context).
    pub segments: Vec<usize>,
}

impl PromptEmbeddings {
    /// Embeds the distinct prompts of `prompts` (in first-seen order) as `scorer` encodes them.
    pub async fn embed<S: AsRef<str>>(encoder: &Encoder, scorer: Scorer, prompts: &[S]) -> Result<Self, ClipError> {
        let mut distinct: Vec<String> = Vec::new();
        let mut index = HashMap::new();
        for p in prompts {
            index.entry(p.as_ref().to_string()).or_insert_with(|| {
                distinct.push(p.as_ref().to_string());
                distinct.len() - 1
            });
        }
        let texts: Vec<String> = distinct.iter().map(|p| scorer.text(p)).collect();
        let embedded = encoder.embed_texts(&texts).await?;
        let rows: Vec<&[f32]> = embedded.iter().map(|t| t.vector.as_slice()).collect();
        let embeddings = Embeddings::from_rows(&rows).ok_or_else(|| ClipError::Input("no prompts to score".into()))?;
        let segments = embedded.iter().map(|t| t.segments).collect();
        Ok(PromptEmbeddings { prompts: distinct, index, embeddings, segments })
    }

    /// Prompts already embedded (one row of `embeddings` each, as the preset encodes them).
    pub fn from_parts(prompts: Vec<String>, embeddings: Embeddings, segments: Vec<usize>) -> Self {
        let mut index = HashMap::new();
        for (i, p) in prompts.iter().enumerate() {
            index.entry(p.clone()).or_insert(i);
        }
        PromptEmbeddings { prompts, index, embeddings, segments }
    }

    pub fn prompts(&self) -> &[String] {
        &self.prompts
    }

    /// The row of `prompt`, if it was embedded.
    pub fn index(&self, prompt: &str) -> Option<usize> {
        self.index.get(prompt).copied()
    }

    /// The common direction of these prompts (what `Reference::Prompts` of the same prompts
    /// gives, without running the text tower again).
    pub fn direction(&self) -> Vec<f32> {
        common_direction(&self.embeddings)
    }
}

/// The rows of `prefscope score` with the contract's column names (docs/DESIGN.md
/// "prefscope score"), shared by the command and the JavaScript API so that both name them alike.
pub fn rows_table(rows: &[ScoreRow]) -> OutputTable {
    let text = |f: fn(&ScoreRow) -> String| Column::Text(rows.iter().map(f).collect());
    let float = |f: fn(&ScoreRow) -> f32| Column::Float(rows.iter().map(|r| f(r) as f64).collect());
    OutputTable::new(vec![
        ("id".into(), text(|r| r.id.clone())),
        ("group".into(), text(|r| r.group.clone())),
        ("prompt".into(), text(|r| r.prompt.clone())),
        ("image".into(), text(|r| r.image.clone())),
        ("score".into(), float(|r| r.score)),
        ("relevant".into(), float(|r| r.relevant)),
        ("irrelevant".into(), float(|r| r.irrelevant)),
        ("reweighted".into(), float(|r| r.reweighted)),
        ("probability".into(), float(|r| r.probability)),
        ("rank".into(), Column::Int(rows.iter().map(|r| r.rank as i64).collect())),
    ])
}

/// Scores rows against image embeddings (L2-normalised, from [`Encoder::embed_images`] with
/// [`Scorer::preset`]) and the rows' prompts, embedded once in `prompts`. With the towers on a
/// GPU the scores, the split, the softmax and the ranks run there in one pass with one
/// read-back (prefscope-gpu's `score_rows`); on the CPU they are prefscope-core's twins.
pub(crate) async fn score(
    encoder: &Encoder,
    items: &[Item<'_>],
    images: &Embeddings,
    prompts: &PromptEmbeddings,
    scorer: Scorer,
    reweight: f32,
    u: &[f32],
) -> Result<Vec<ScoreRow>, ClipError> {
    let pair = scorer.pair_score(encoder.logit_scale());
    let (scale, clamp) = pair.affine();
    let (mut out, rows, groups) = rows_of(items, images.len(), prompts)?;
    if let Some(gpu) = encoder.gpu() {
        let request =
            RowRequest { images, texts: &prompts.embeddings, u, rows: &rows, groups: &groups, scale, clamp, reweight };
        match gpu.score_rows(&request).await {
            Ok(scored) => {
                for (k, row) in out.iter_mut().enumerate() {
                    row.score = scored.score[k];
                    row.relevant = scored.relevant[k];
                    row.irrelevant = scored.irrelevant[k];
                    row.reweighted = scored.reweighted[k];
                    row.probability = scored.probability[k];
                    row.rank = scored.rank[k];
                }
                return Ok(out);
            }
            // Larger than one binding: the CPU scores it.
            Err(GpuError::TooLarge { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (row, &(image, text)) in out.iter_mut().zip(&rows) {
        let (text, image) = (prompts.embeddings.row(text), images.row(image));
        let parts = decompose(text, image, u, scale);
        row.score = pair.apply(dot(text, image) as f32);
        row.relevant = parts.relevant;
        row.irrelevant = parts.irrelevant;
        row.reweighted = parts.reweighted(reweight);
    }
    rank_within_groups(&mut out, &groups);
    Ok(out)
}

/// The split of every image × prompt score (images × prompts, row-major, prompts in
/// [`PromptEmbeddings`] order): computed once where a page shows all of them.
pub(crate) struct SplitMatrix<'a> {
    pub relevant: &'a [f32],
    pub irrelevant: &'a [f32],
}

/// [`score`] for rows whose split is already in `split`: each row reads its parts from it,
/// its score is their sum (clamped at 0 where the preset clamps), and only the softmax and the
/// ranks within groups are left to compute. The sum equals [`score`]'s score up to f32
/// rounding, since the split divides exactly that score.
pub(crate) fn score_from_split(
    encoder: &Encoder,
    items: &[Item<'_>],
    images: usize,
    prompts: &PromptEmbeddings,
    scorer: Scorer,
    reweight: f32,
    split: &SplitMatrix<'_>,
) -> Result<Vec<ScoreRow>, ClipError> {
    let (_, clamp) = scorer.pair_score(encoder.logit_scale()).affine();
    let (mut out, rows, groups) = rows_of(items, images, prompts)?;
    let width = prompts.prompts().len();
    for (row, &(image, text)) in out.iter_mut().zip(&rows) {
        let k = image * width + text;
        let (relevant, irrelevant) = match (split.relevant.get(k), split.irrelevant.get(k)) {
            (Some(&r), Some(&i)) => (r, i),
            _ => return Err(ClipError::Input(format!("row `{}`: the split has no pair {image} × {text}", row.id))),
        };
        let sum = relevant + irrelevant;
        row.score = if clamp { sum.max(0.0) } else { sum };
        row.relevant = relevant;
        row.irrelevant = irrelevant;
        row.reweighted = relevant + reweight * irrelevant;
    }
    rank_within_groups(&mut out, &groups);
    Ok(out)
}

/// Each item as a row to fill (its image and prompt checked), the (image, prompt) pair it
/// scores, and its group's number.
#[allow(clippy::type_complexity)]
fn rows_of(
    items: &[Item<'_>],
    images: usize,
    prompts: &PromptEmbeddings,
) -> Result<(Vec<ScoreRow>, Vec<(usize, usize)>, Vec<u32>), ClipError> {
    let mut group_ids: HashMap<String, u32> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    let mut groups = Vec::with_capacity(items.len());
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let row = prompts.index(item.prompt).ok_or_else(|| {
            ClipError::Input(format!("the prompt of row `{}` was not embedded: {:?}", item.id, item.prompt))
        })?;
        if item.image >= images {
            return Err(ClipError::Input(format!("row `{}` names image {} of {}", item.id, item.image, images)));
        }
        rows.push((item.image, row));
        let group = item.group.clone().unwrap_or_else(|| item.prompt.to_string());
        let next = group_ids.len() as u32;
        groups.push(*group_ids.entry(group.clone()).or_insert(next));
        out.push(ScoreRow {
            id: item.id.clone(),
            group,
            prompt: item.prompt.to_string(),
            image: item.image_name.to_string(),
            score: 0.0,
            relevant: 0.0,
            irrelevant: 0.0,
            reweighted: 0.0,
            probability: 0.0,
            rank: 0,
        });
    }
    Ok((out, rows, groups))
}

/// Softmax of the scores and ranks within each group (prefscope-core's twins of the kernels).
fn rank_within_groups(out: &mut [ScoreRow], groups: &[u32]) {
    let scores: Vec<f32> = out.iter().map(|r| r.score).collect();
    for ((row, p), r) in out.iter_mut().zip(grouped_softmax(&scores, groups)).zip(grouped_ranks(&scores, groups)) {
        row.probability = p;
        row.rank = r;
    }
}
