//! Work a control asks for, queued in the state until `effects::run` answers it.

/// Work a control asks for with what the user gave (files, URLs, a choice): queued by the
/// reducer, started by `effects::run`, answered by actions. Views start no work themselves.
pub enum Request {
    /// Picked or dropped files: images are decoded, manifests parsed.
    IngestFiles(Vec<web_sys::File>),
    /// Images by URL.
    FetchImages(Vec<String>),
    /// Labelled pairs for the Pairs view.
    PairsFile(web_sys::File),
    /// DPO log-probabilities: one file, or several evaluations of one run.
    DpoFiles(Vec<web_sys::File>),
    /// The bundled DPO run, every checkpoint.
    BundledDpo,
    /// A model from picked files.
    ModelFiles(Vec<web_sys::File>),
    /// Empty the model cache.
    ClearCache,
}

/// A request is itself (it holds the user's files), not an equal one.
impl PartialEq for Request {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
