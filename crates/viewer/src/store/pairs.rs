//! The Pairs view's data: labelled pairs with the model's probabilities, or annotator groups.

/// Labelled pairs with the model's probabilities (the towers ran once; the threshold is free).
pub struct Pairs {
    pub source: String,
    pub pairs: Vec<prefscope_clip::pairs::PairProbabilities>,
    /// Thumbnails of images 0 and 1 of each pair.
    pub thumbnails: Vec<(Option<String>, Option<String>)>,
    /// Each pair's preference strength under the ensemble (mean, standard deviation) and band.
    pub strength: Vec<(f64, f64, prefscope_core::preference::strength::Band)>,
    /// For the bundled set: which labels were flipped (the truth the bands are checked against).
    pub flipped: Option<Vec<bool>>,
    /// Annotated pairs (`user_id`, `features_0`, `features_1`, `label_0`): the annotator groups.
    pub groups: Option<AnnotatorGroups>,
}

/// The Groups panel's content.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnotatorGroups {
    pub fit: prefscope_core::preference::groups::GroupFit,
    /// A GPM head's cyclic triads, for small enough inputs.
    pub gpm: Option<prefscope_core::preference::gpm::GpmFit>,
    /// Where EM's kernels ran: "webgpu", or "cpu" (and why, when WebGPU could not take them).
    pub device: String,
}

impl PartialEq for Pairs {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
