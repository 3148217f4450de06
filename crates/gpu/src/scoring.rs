//! A manifest's rows scored in one pass on the device: the products of every image with every
//! prompt, the LongAlign projections, each row's parts, score and reweighted score, then the
//! softmax and ranks within its group — one submit, one read-back. Twin of
//! `prefscope_core::scoring::longalign::decompose` and `prefscope_core::scoring::clip_score::{grouped_softmax,
//! grouped_ranks}` as prefscope-clip's scorer combines them.

use prefscope_core::scoring::embedding::Embeddings;

use crate::groups::{group_order, SHADER as GROUPS};
use crate::kernel::{cast, groups_for, groups_per_item};
use crate::longalign::SHADER as LONGALIGN;
use crate::params::{GroupsParams, LongAlignParams};
use crate::{Gpu, GpuError};

/// One value per row, in the order the rows were given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowScores {
    pub score: Vec<f32>,
    pub relevant: Vec<f32>,
    pub irrelevant: Vec<f32>,
    pub reweighted: Vec<f32>,
    pub probability: Vec<f32>,
    pub rank: Vec<u32>,
}

/// What to score: `rows[r] = (image, text)` rows of the two matrices, `groups[r]` the group
/// row `r` competes in; parts in units of `scale`, the score clamped at 0 when `clamp`.
pub struct RowRequest<'a> {
    /// L2-normalised image embeddings.
    pub images: &'a Embeddings,
    /// Text embeddings as scored (LongAlign segment averages are not renormalised).
    pub texts: &'a Embeddings,
    /// The common text direction.
    pub u: &'a [f32],
    pub rows: &'a [(usize, usize)],
    pub groups: &'a [u32],
    pub scale: f32,
    pub clamp: bool,
    pub reweight: f32,
}

impl Gpu {
    /// Scores `request`'s rows; inputs past one binding are refused with
    /// [`GpuError::TooLarge`] (the caller scores on the CPU then).
    pub async fn score_rows(&self, request: &RowRequest<'_>) -> Result<RowScores, GpuError> {
        let RowRequest { images, texts, u, rows, groups, scale, clamp, reweight } = *request;
        let dim = crate::longalign::same_widths(images, texts, u)?;
        if groups.len() != rows.len() {
            return Err(GpuError::Shape(format!("{} rows but {} group ids", rows.len(), groups.len())));
        }
        let (ni, np, m) = (images.len(), texts.len(), rows.len());
        if let Some(&(i, j)) = rows.iter().find(|&&(i, j)| i >= ni || j >= np) {
            return Err(GpuError::Shape(format!("row ({i}, {j}) is past {ni} images and {np} texts")));
        }
        if m == 0 {
            return Ok(RowScores::default());
        }
        for (what, bytes) in [
            ("the image embeddings", images.data.len() * 4),
            ("the text embeddings", texts.data.len() * 4),
            ("the image × text products", ni * np * 4),
            ("the rows' parts", 4 * m * 4),
            ("the rows' picks", 3 * m * 4),
        ] {
            self.check_fits(|| what.to_string(), bytes as u64)?;
        }
        // Rows gathered by group, as the softmax kernel reads them.
        let (offsets, order) = group_order(groups);
        let n_groups = offsets.len() - 1;
        let picks: Vec<u32> = order
            .iter()
            .flat_map(|&r| {
                let (i, j) = rows[r];
                [(i * np + j) as u32, i as u32, (ni + j) as u32]
            })
            .collect();

        let scope = self.scope("scoring")?;
        let mut enc = self.encoder();
        let ub = self.upload("direction", u);
        let pk = self.upload("picks", &picks);
        let parts = self.scratch("parts", (4 * m * 4) as u64);
        let scores = self.scratch("scores", (m * 4) as u64);
        let off = self.upload("offsets", &offsets);
        let prob = self.scratch("probabilities", (m * 4) as u64);
        let rank = self.scratch("ranks", (m * 4) as u64);
        let (prod, y) = self.record_projections(&mut enc, &images.data, &texts.data, &ub, dim);
        let pr = LongAlignParams { rows: m as u32, clamp: clamp as u32, scale, weight: reweight, ..Default::default() };
        let bindings = [(1, &prod), (2, &y), (3, &parts), (4, &pk)];
        self.dispatch_at(&mut enc, &LONGALIGN, "pick_rows", &pr, &bindings, groups_for(m as u64));
        enc.copy_buffer_to_buffer(&parts, (2 * m * 4) as u64, &scores, 0, (m * 4) as u64);
        let pg = GroupsParams { groups: n_groups as u32 };
        let bindings = [&off, &scores, &prob, &rank];
        self.dispatch(&mut enc, &GROUPS, "softmax_ranks", &pg, &bindings, groups_per_item(n_groups as u64));
        let bytes = self
            .finish(scope, enc, &[(&parts, (4 * m * 4) as u64), (&prob, (m * 4) as u64), (&rank, (m * 4) as u64)])
            .await?;
        let (parts, prob, rank): (Vec<f32>, Vec<f32>, Vec<u32>) = (cast(&bytes[0]), cast(&bytes[1]), cast(&bytes[2]));
        let mut out = RowScores {
            score: vec![0.0; m],
            relevant: vec![0.0; m],
            irrelevant: vec![0.0; m],
            reweighted: vec![0.0; m],
            probability: vec![0.0; m],
            rank: vec![0; m],
        };
        for (k, &r) in order.iter().enumerate() {
            out.relevant[r] = parts[k];
            out.irrelevant[r] = parts[m + k];
            out.score[r] = parts[2 * m + k];
            out.reweighted[r] = parts[3 * m + k];
            out.probability[r] = prob[k];
            out.rank[r] = rank[k];
        }
        Ok(out)
    }
}
