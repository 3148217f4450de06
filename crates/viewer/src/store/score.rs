//! The Score and Decompose views' data: the user's inputs and a scored set.

use std::rc::Rc;

use prefscope_clip::scorer::Scorer;

/// Where the scored images and prompts came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The embedded demo gallery (with the shapes world's ground truth).
    Demo,
    /// The user's images and prompts (typed, dropped, fetched or from a manifest).
    User,
}

/// One scored image × prompt row, as the Score view lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub id: String,
    /// Rows of a group compete in the softmax and the ranking.
    pub group: String,
    pub prompt: String,
    /// Index into the scored images and prompts (the split's matrix).
    pub image: usize,
    pub text: usize,
    pub rank: u32,
    pub score: f32,
    pub relevant: f32,
    pub irrelevant: f32,
    pub probability: f32,
    /// The shapes world's ground truth (alignment, quality), for the demo gallery.
    pub truth: Option<(f32, f32)>,
}

/// A scored set with everything the Score and Decompose views show.
pub struct Scored {
    pub scorer: Scorer,
    pub source: Source,
    pub rows: Vec<Row>,
    /// Names of the scored images and texts of the scored prompts (the matrix's axes).
    pub image_names: Vec<String>,
    pub prompts: Vec<String>,
    /// LongAlign segments each prompt was encoded in.
    pub segments: Vec<usize>,
    /// Thumbnails, one per image (data or object URLs).
    pub thumbnails: Vec<Option<String>>,
    /// What the common direction is the mean of.
    pub reference: String,
    /// Relevant and irrelevant parts of every image × prompt (images × prompts, row-major),
    /// kept on the GPU when the towers ran there: the slider re-runs one kernel.
    pub split: prefscope_clip::session::Split,
    /// What the diversity split needs (`None` where the rows pair no image with its prompt, or
    /// past the page's bound).
    pub diversity_input: Option<crate::diversity::DiversityInput>,
    /// Milliseconds from navigation to this result.
    pub millis: f64,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Scored {
    /// The index of row `r`'s pair in the split's matrix.
    pub fn cell(&self, r: &Row) -> usize {
        r.image * self.prompts.len() + r.text
    }
}

/// A decoded image the user gave.
pub struct UserImage {
    pub name: String,
    pub rgba: prefscope_clip::Rgba,
    pub thumbnail: Option<String>,
}

/// The same image, not an equal one: decoded images are compared by identity (cheap, and
/// what a re-render needs to know).
impl PartialEq for UserImage {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// The user's inputs to the Score view.
#[derive(Clone, Default, PartialEq)]
pub struct Inputs {
    pub images: Vec<Rc<UserImage>>,
    /// Prompts typed or pasted, one per line; every image is ranked against each.
    pub prompts: Vec<String>,
    /// A manifest's rows (prompt, image, group, id): each row scores its image, by name.
    pub manifest: Option<(String, Vec<prefscope_core::io::record::ManifestRow>)>,
    /// Use the bundled reference prompts (else the user's prompts) for the common direction.
    pub bundled_reference: bool,
}
