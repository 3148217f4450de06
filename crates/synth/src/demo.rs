//! The embedded demo model and what the page and `prefscope demo` do with it: score the demo
//! gallery (PickScore-style, with the LongAlign split against a shapes-world reference set)
//! and evaluate the model on held-out draws of the world against the ground truth.

use prefscope_clip::scorer::{common_text_direction, Item, PromptEmbeddings, Reference, Scorer};
use prefscope_clip::session::{Direction, Session, Split};
use prefscope_clip::{ClipError, Encoder, ModelFiles, Rgba};
use prefscope_core::correlation::{kendall_tau_b, spearman};
use prefscope_core::scoring::embedding::{dot, Embeddings};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::caption;
use crate::degrade;
use crate::gallery::{gallery, Entry};
use crate::scene::Scene;
use crate::world::{mutate, Sample, Truth};

/// The model's canvas.
pub const SIZE: u32 = 64;
/// Seed of the held-out evaluation draws (training draws from its own stream).
pub const EVALUATION_SEED: u64 = 9001;
/// Seed of the reference prompts whose mean gives the common text direction.
pub const REFERENCE_SEED: u64 = 4242;
/// Utility differences below this are ties and left out of the preference accuracy.
pub const TIE: f32 = 0.02;

/// The demo model's files, compiled in: nothing to download.
pub fn model_files() -> ModelFiles {
    let mut files = ModelFiles::new();
    files.insert("config.json", include_bytes!("../demo-model/config.json").to_vec());
    files.insert("preprocessor_config.json", include_bytes!("../demo-model/preprocessor_config.json").to_vec());
    files.insert("model.safetensors", include_bytes!("../demo-model/model.safetensors").to_vec());
    files.insert("tokenizer.json", include_bytes!("../demo-model/tokenizer.json").to_vec());
    files
}

/// The training log written next to the weights (budget, time, losses).
pub const TRAINING_LOG: &str = include_str!("../demo-model/training.json");

/// The bundled demo model's common direction over [`reference_prompts`] (prompts as written:
/// every preset but clipscore-original), computed once and shipped beside the weights so the
/// page's first ranking need not run 64 prompts through the text tower. A test checks it
/// against the model (`PREFSCOPE_BLESS=1 cargo test -p prefscope-synth bundled_direction`
/// rewrites it after `cargo xtask train-demo`).
pub fn bundled_reference_direction() -> Vec<f32> {
    include_bytes!("../demo-model/reference_direction.f32")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// 64 short captions of random scenes: the shapes world's "typical prompt", whose mean
/// embedding is the common direction of the decomposition.
pub fn reference_prompts() -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(REFERENCE_SEED);
    (0..64).map(|_| caption::short(&Scene::random(&mut rng)).text).collect()
}

/// One scored candidate of a gallery.
#[derive(Clone, Debug, Serialize)]
pub struct GalleryRow {
    pub prompt: String,
    pub id: String,
    pub rank: u32,
    pub score: f32,
    pub relevant: f32,
    pub irrelevant: f32,
    pub reweighted: f32,
    pub probability: f32,
    pub alignment: f32,
    pub quality: f32,
    pub utility: f32,
    /// LongAlign segments the prompt was encoded in (1 when it fits the context).
    pub segments: usize,
}

/// A sample drawn at the demo model's size, as the towers take it.
pub fn rgba(id: &str, sample: &Sample) -> Result<Rgba, ClipError> {
    let image = sample.render(SIZE);
    Rgba::from_raw(id, image.width, image.height, image.data)
}

/// Embeds the candidates and prompts of `entries` for `scorer` (one prompt row per entry, in
/// entry order, with the LongAlign segments it was encoded in) and takes the common direction
/// `u` (from [`reference_prompts`] unless given): a session every later score, split and
/// reweighting of the gallery runs on (the page moves sliders over it without running the
/// towers again).
pub async fn embed_gallery(
    encoder: &Encoder,
    entries: &[Entry],
    scorer: Scorer,
    u: Option<&[f32]>,
) -> Result<Session, ClipError> {
    let u = match u {
        Some(u) => u.to_vec(),
        None => common_text_direction(encoder, scorer, &Reference::Prompts(reference_prompts())).await?,
    };
    let mut images = Vec::new();
    for entry in entries {
        for c in &entry.candidates {
            images.push(rgba(&c.id, &c.sample)?);
        }
    }
    let preset = scorer.preset(encoder.preset());
    let images = encoder.embed_images(&images, Some(&preset)).await?;
    let texts: Vec<String> = entries.iter().map(|e| scorer.text(&e.prompt.text)).collect();
    let embedded = encoder.embed_texts(&texts).await?;
    let rows: Vec<&[f32]> = embedded.iter().map(|t| t.vector.as_slice()).collect();
    let vectors = Embeddings::from_rows(&rows).ok_or_else(|| ClipError::Input("the gallery has no prompts".into()))?;
    let prompts = PromptEmbeddings::from_parts(
        entries.iter().map(|e| e.prompt.text.clone()).collect(),
        vectors,
        embedded.iter().map(|t| t.segments).collect(),
    );
    Ok(Session::from_prompts(scorer, images, prompts, Direction::Given(u)))
}

/// Scores every candidate of `entries` against its prompt with `scorer`, splitting each score
/// against the common direction `u` (from [`reference_prompts`] unless given).
pub async fn score_gallery(
    encoder: &Encoder,
    entries: &[Entry],
    scorer: Scorer,
    reweight: f32,
    u: Option<&[f32]>,
) -> Result<Vec<GalleryRow>, ClipError> {
    let session = embed_gallery(encoder, entries, scorer, u).await?;
    score_embedded(encoder, entries, &session, reweight, None).await
}

/// [`score_gallery`] on the session [`embed_gallery`] made; with `split` (every candidate ×
/// prompt, taken once by a page that shows them all) the rows read their parts from it.
pub async fn score_embedded(
    encoder: &Encoder,
    entries: &[Entry],
    session: &Session,
    reweight: f32,
    split: Option<&Split>,
) -> Result<Vec<GalleryRow>, ClipError> {
    let mut items = Vec::new();
    let mut truths: Vec<Truth> = Vec::new();
    let mut prompt_of = Vec::new();
    let mut k = 0;
    for (p, entry) in entries.iter().enumerate() {
        for c in &entry.candidates {
            items.push(Item {
                id: c.id.clone(),
                group: Some(format!("p{p}")),
                prompt: &entry.prompt.text,
                image: k,
                image_name: &c.id,
            });
            truths.push(c.truth);
            prompt_of.push(p);
            k += 1;
        }
    }
    let rows = session.score(encoder, &items, reweight, split).await?;
    let segments = &session.prompts.segments;
    Ok(rows
        .into_iter()
        .zip(truths)
        .zip(prompt_of)
        .map(|((r, t), p)| GalleryRow {
            prompt: r.prompt,
            id: r.id,
            rank: r.rank,
            score: r.score,
            relevant: r.relevant,
            irrelevant: r.irrelevant,
            reweighted: r.reweighted,
            probability: r.probability,
            alignment: t.alignment,
            quality: t.quality,
            utility: t.utility,
            segments: segments[p],
        })
        .collect())
}

/// Held-out evaluation against the world's ground truth (the keys `prefscope demo --evaluate`
/// prints).
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Caption → image among 8 candidates (the captioned scene and 7 other random scenes, all
    /// randomly degraded): share of captions whose own image scores highest.
    pub retrieval_top1: f64,
    /// The same with 3 of the 7 distractors one edit away from the captioned scene.
    pub retrieval_top1_hard: f64,
    /// Pairs of candidates of one prompt whose utilities differ by at least [`TIE`]: share
    /// ordered by score as by utility.
    pub preference_accuracy: f64,
    pub spearman_irrelevant_quality: f64,
    pub spearman_relevant_alignment: f64,
    pub spearman_irrelevant_alignment: f64,
    pub spearman_relevant_quality: f64,
    /// Mean over prompts of ρ(relevant, alignment) among one prompt's candidates: the
    /// ordering a user sees, free of the level each prompt's relevant part sits at.
    pub spearman_relevant_alignment_within_prompt: f64,
    pub retrieval_captions: usize,
    pub gallery_prompts: usize,
    pub scored_rows: usize,
    pub preference_pairs: usize,
}

/// Evaluates on `prompts` held-out gallery prompts and as many retrieval captions.
pub async fn evaluate(encoder: &Encoder, seed: u64, prompts: usize) -> Result<Evaluation, ClipError> {
    Ok(evaluate_rows(encoder, seed, prompts).await?.0)
}

/// [`evaluate`], with the scored gallery rows (for [`agreement`]).
pub async fn evaluate_rows(
    encoder: &Encoder,
    seed: u64,
    prompts: usize,
) -> Result<(Evaluation, Vec<GalleryRow>), ClipError> {
    let (retrieval_top1, retrieval_top1_hard) = retrieval(encoder, seed, prompts).await?;
    let entries = gallery(seed ^ 0x6a11e7, prompts);
    let rows =
        score_gallery(encoder, &entries, Scorer::PickScore, prefscope_core::scoring::longalign::DEFAULT_REWEIGHT, None)
            .await?;
    let (mut correct, mut pairs) = (0.0, 0usize);
    let mut start = 0;
    for entry in &entries {
        let group = &rows[start..start + entry.candidates.len()];
        start += entry.candidates.len();
        for i in 0..group.len() {
            for j in i + 1..group.len() {
                let du = group[i].utility - group[j].utility;
                if du.abs() < TIE {
                    continue;
                }
                pairs += 1;
                let ds = group[i].score - group[j].score;
                correct += if ds == 0.0 {
                    0.5
                } else if (ds > 0.0) == (du > 0.0) {
                    1.0
                } else {
                    0.0
                };
            }
        }
    }
    let column = |f: fn(&GalleryRow) -> f32| rows.iter().map(|r| f(r) as f64).collect::<Vec<_>>();
    let (relevant, irrelevant) = (column(|r| r.relevant), column(|r| r.irrelevant));
    let (alignment, quality) = (column(|r| r.alignment), column(|r| r.quality));
    let rho = |a: &[f64], b: &[f64]| spearman(a, b).unwrap_or(f64::NAN);
    let mut within = Vec::new();
    let mut start = 0;
    for entry in &entries {
        let n = entry.candidates.len();
        within.extend(spearman(&relevant[start..start + n], &alignment[start..start + n]));
        start += n;
    }
    let evaluation = Evaluation {
        retrieval_top1,
        retrieval_top1_hard,
        preference_accuracy: if pairs == 0 { f64::NAN } else { correct / pairs as f64 },
        spearman_irrelevant_quality: rho(&irrelevant, &quality),
        spearman_relevant_alignment: rho(&relevant, &alignment),
        spearman_irrelevant_alignment: rho(&irrelevant, &alignment),
        spearman_relevant_quality: rho(&relevant, &quality),
        spearman_relevant_alignment_within_prompt: within.iter().sum::<f64>() / within.len().max(1) as f64,
        retrieval_captions: prompts,
        gallery_prompts: entries.len(),
        scored_rows: rows.len(),
        preference_pairs: pairs,
    };
    Ok((evaluation, rows))
}

/// How far another encoder of the same model (another dtype) keeps `reference`'s rankings of
/// the held-out gallery [`evaluate`] scores.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// Mean over prompts of Kendall's τ-b between the two encoders' scores of its candidates.
    pub kendall_tau_within_prompts: f64,
    /// Prompts whose best-scored candidate differs.
    pub top1_changes: usize,
    pub prompts: usize,
}

/// [`Agreement`] of the rows `other` with `reference`, both from [`evaluate_rows`] on the same
/// gallery (rows of one prompt together, in the same order).
pub fn agreement(reference: &[GalleryRow], other: &[GalleryRow]) -> Agreement {
    let (a, b) = (reference, other);
    let (mut taus, mut top1_changes, mut start, mut prompts) = (Vec::new(), 0, 0, 0);
    while start < a.len() {
        let n = a[start..].iter().take_while(|r| r.prompt == a[start].prompt).count();
        prompts += 1;
        let (x, y): (Vec<f64>, Vec<f64>) =
            a[start..start + n].iter().zip(&b[start..start + n]).map(|(p, q)| (p.score as f64, q.score as f64)).unzip();
        taus.extend(kendall_tau_b(&x, &y));
        let best = |v: &[f64]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j]));
        top1_changes += usize::from(best(&x) != best(&y));
        start += n;
    }
    Agreement { kendall_tau_within_prompts: taus.iter().sum::<f64>() / taus.len().max(1) as f64, top1_changes, prompts }
}

/// Top-1 retrieval among 8, with random distractors and with hard ones.
async fn retrieval(encoder: &Encoder, seed: u64, captions: usize) -> Result<(f64, f64), ClipError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut texts = Vec::with_capacity(captions);
    let mut images = Vec::with_capacity(captions * 15);
    for i in 0..captions {
        let scene = Scene::random(&mut rng);
        texts.push(caption::short(&scene).text);
        // Own image, 7 random scenes, then 3 one-edit variants (replacing 3 random ones).
        let mut scenes = vec![scene.clone()];
        scenes.extend((0..7).map(|_| Scene::random(&mut rng)));
        scenes.extend((0..3).map(|_| mutate(&scene, &mut rng)));
        for (k, scene) in scenes.into_iter().enumerate() {
            let sample = Sample { scene, degradations: degrade::random(&mut rng) };
            images.push(rgba(&format!("r{i}-{k}"), &sample)?);
        }
    }
    let preset = Scorer::PickScore.preset(encoder.preset());
    let embedded = encoder.embed_images(&images, Some(&preset)).await?;
    let text = encoder.embed_texts(&texts).await?;
    let (mut easy, mut hard) = (0, 0);
    for (i, t) in text.iter().enumerate() {
        let cos = |k: usize| dot(&t.vector, embedded.row(i * 11 + k));
        let own = cos(0);
        let random_best = (1..8).map(cos).fold(f64::NEG_INFINITY, f64::max);
        let hard_best = (1..5).chain(8..11).map(cos).fold(f64::NEG_INFINITY, f64::max);
        easy += usize::from(own > random_best);
        hard += usize::from(own > hard_best);
    }
    Ok((easy as f64 / captions as f64, hard as f64 / captions as f64))
}
