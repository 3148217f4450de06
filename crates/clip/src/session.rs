//! One scoring session for every entry point — the command, the Python package, the JavaScript
//! API and the page: the images and each distinct prompt embedded once, the common direction,
//! then rows scored on the encoder's device (their split, softmax and ranks within groups
//! included). A page that shows every image × prompt pair takes the [`Split`] of all of them
//! once, kept on the GPU when the towers run there, so that the reweighting slider re-runs one
//! kernel and the rows read their parts from it.

use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::longalign::decompose_all;
use prefscope_gpu::{Decomposed, Gpu};

use crate::encoder::Encoder;
use crate::error::ClipError;
use crate::image::Rgba;
use crate::scorer::{score, score_from_split, Item, PromptEmbeddings, ScoreRow, Scorer, SplitMatrix};

/// The common text direction a session splits its scores against.
pub enum Direction {
    /// Computed before (a reference set's, cached by the page, or shipped with the demo model).
    Given(Vec<f32>),
    /// The mean of the session's own prompts (they are the reference set).
    OfPrompts,
}

/// Embedded images and prompts with the direction their scores are split against.
pub struct Session {
    pub scorer: Scorer,
    /// The images as the scorer's preset embeds them, L2-normalised.
    pub images: Embeddings,
    /// Each distinct prompt once, as the scorer encodes it.
    pub prompts: PromptEmbeddings,
    /// The common text direction.
    pub u: Vec<f32>,
}

impl Session {
    /// A session over images embedded already (the command embeds them a batch at a time as
    /// it decodes them) and the rows' prompts, each distinct one embedded once.
    pub async fn new<S: AsRef<str>>(
        encoder: &Encoder,
        scorer: Scorer,
        images: Embeddings,
        prompts: &[S],
        direction: Direction,
    ) -> Result<Self, ClipError> {
        let prompts = PromptEmbeddings::embed(encoder, scorer, prompts).await?;
        Ok(Self::from_prompts(scorer, images, prompts, direction))
    }

    /// [`Session::new`] with the images embedded here, with the scorer's preset.
    pub async fn embed<S: AsRef<str>>(
        encoder: &Encoder,
        scorer: Scorer,
        images: &[Rgba],
        prompts: &[S],
        direction: Direction,
    ) -> Result<Self, ClipError> {
        let images = encoder.embed_images(images, Some(&scorer.preset(encoder.preset()))).await?;
        Self::new(encoder, scorer, images, prompts, direction).await
    }

    /// A session over prompts embedded already.
    pub fn from_prompts(scorer: Scorer, images: Embeddings, prompts: PromptEmbeddings, direction: Direction) -> Self {
        let u = match direction {
            Direction::Given(u) => u,
            Direction::OfPrompts => prompts.direction(),
        };
        Session { scorer, images, prompts, u }
    }

    /// The rows of `items`: with `split` (this session's), each row reads its parts from it;
    /// otherwise every row's score, split, softmax and rank are computed on the encoder's GPU
    /// in one pass (on the CPU without one, or for more rows than one binding holds).
    pub async fn score(
        &self,
        encoder: &Encoder,
        items: &[Item<'_>],
        reweight: f32,
        split: Option<&Split>,
    ) -> Result<Vec<ScoreRow>, ClipError> {
        if !reweight.is_finite() {
            return Err(ClipError::Input(format!("reweight must be a finite number, got {reweight}")));
        }
        match split {
            Some(split) => score_from_split(
                encoder,
                items,
                self.images.len(),
                &self.prompts,
                self.scorer,
                reweight,
                &split.matrix(),
            ),
            None => score(encoder, items, &self.images, &self.prompts, self.scorer, reweight, &self.u).await,
        }
    }

    /// The split of every image × prompt score (images × prompts, row-major, prompts in
    /// [`PromptEmbeddings`] order): on the encoder's GPU, kept there, or on the CPU.
    pub async fn split(&self, encoder: &Encoder) -> Result<Split, ClipError> {
        let (scale, _) = self.scorer.pair_score(encoder.logit_scale()).affine();
        let texts = &self.prompts.embeddings;
        match encoder.gpu() {
            Some(gpu) => {
                let d = gpu
                    .decompose(&self.images, texts, &self.u, scale)
                    .await
                    .map_err(|e| ClipError::Input(format!("decomposition on the GPU: {e}")))?;
                Ok(Split {
                    relevant: d.relevant.clone(),
                    irrelevant: d.irrelevant.clone(),
                    resident: Some((gpu.clone(), d)),
                })
            }
            None => {
                let parts = decompose_all(&self.images, texts, &self.u, scale);
                Ok(Split {
                    relevant: parts.iter().map(|p| p.relevant).collect(),
                    irrelevant: parts.iter().map(|p| p.irrelevant).collect(),
                    resident: None,
                })
            }
        }
    }
}

/// The relevant and irrelevant parts of every image × prompt score, and, when they were
/// computed on a GPU, the same parts kept there.
#[derive(Default)]
pub struct Split {
    pub relevant: Vec<f32>,
    pub irrelevant: Vec<f32>,
    resident: Option<(Gpu, Decomposed)>,
}

impl Split {
    /// Whether the parts are kept on a GPU.
    pub fn on_gpu(&self) -> bool {
        self.resident.is_some()
    }

    pub(crate) fn matrix(&self) -> SplitMatrix<'_> {
        SplitMatrix { relevant: &self.relevant, irrelevant: &self.irrelevant }
    }

    /// `relevant + weight·irrelevant` for every pair: one kernel over the resident parts, or
    /// the same formula on the CPU.
    pub async fn reweighted(&self, weight: f32) -> Result<Vec<f32>, ClipError> {
        match &self.resident {
            Some((gpu, parts)) => parts
                .reweighted(gpu, weight)
                .await
                .map_err(|e| ClipError::Input(format!("reweighting on the GPU: {e}"))),
            None => Ok(self.relevant.iter().zip(&self.irrelevant).map(|(r, i)| r + weight * i).collect()),
        }
    }
}
