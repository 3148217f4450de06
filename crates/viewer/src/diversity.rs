//! The diversity split of a scored set (`prefscope diversity`'s): what it needs, taken while
//! scoring, and the split itself. It depends on neither the store nor the tasks.

use prefscope_core::scoring::diversity::{split_by_group, Kernel, Paired, SetSplit};
use prefscope_core::scoring::embedding::{normalize, Embeddings};

/// The Schur-complement split of a scored set's rows (over all rows, and per group).
pub type Diversity = (SetSplit, Vec<SetSplit>);

/// What the diversity split of a scored set needs: each row's prompt and image embeddings
/// (those `prefscope diversity --model` uses: images as the towers give them, prompts
/// L2-normalised, so the two agree on the same manifest) and its group. Taken while scoring,
/// split by an effect once the rankings are shown.
pub struct DiversityInput {
    dim: usize,
    text: Vec<f64>,
    image: Vec<f64>,
    groups: Vec<Option<String>>,
}

impl DiversityInput {
    /// `None` past [`DIVERSITY_WORK`] (each split costs rows · width² and width³: the page
    /// leaves those sets to the command). `rows` holds each row's prompt index, image index and
    /// group.
    pub(crate) fn of(rows: &[(usize, usize, &str)], images: &Embeddings, prompts: &Embeddings) -> Option<Self> {
        if (rows.len() as u64).saturating_mul((images.dim as u64).pow(2)) > DIVERSITY_WORK {
            return None;
        }
        Some(Self {
            dim: images.dim,
            text: rows.iter().flat_map(|&(text, _, _)| normalize(prompts.row(text))).map(f64::from).collect(),
            image: rows.iter().flat_map(|&(_, image, _)| images.row(image).iter().map(|&v| f64::from(v))).collect(),
            groups: rows.iter().map(|&(_, _, group)| Some(group.to_string())).collect(),
        })
    }

    /// The split with the cosine kernel, over all rows and per group.
    pub fn split(&self) -> Option<Diversity> {
        let paired = Paired { rows: self.groups.len(), dim: self.dim, text: &self.text, image: &self.image };
        split_by_group(&paired, &self.groups, &Kernel::Cosine).ok()
    }
}

/// Rows × width² past which the Score view leaves the diversity split to `prefscope diversity`.
const DIVERSITY_WORK: u64 = 500_000_000;
