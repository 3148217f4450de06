//! Scoring a manifest end to end: images decoded and embedded a batch at a time (never all
//! decoded at once), the rows as items (one mapping for every entry point), then a scoring
//! [`Session`]. The native command and the Python package share it, so that both give the
//! same rows for the same manifest.

use prefscope_core::io::record::ManifestRow;
use prefscope_core::scoring::embedding::Embeddings;
use prefscope_core::scoring::preprocess::Preset;

use crate::encoder::Encoder;
use crate::error::ClipError;
use crate::image::Rgba;
use crate::scorer::{Item, ScoreRow, Scorer};
use crate::session::{Direction, Session};

/// An image named in a manifest: absolute as given, relative to the manifest's folder.
pub fn resolve(manifest: &std::path::Path, image: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(image);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        manifest.parent().unwrap_or(std::path::Path::new(".")).join(path)
    }
}

/// Each distinct image once: rows whose keys are equal (the same file) share an image, a row
/// without a key (bytes of its own) has one to itself. Returns the image of each row and the
/// first row of each image.
pub fn distinct_images<K: std::hash::Hash + Eq>(keys: impl IntoIterator<Item = Option<K>>) -> (Vec<usize>, Vec<usize>) {
    let mut seen = std::collections::HashMap::new();
    let mut first_row = Vec::new();
    let image_of_row = keys
        .into_iter()
        .enumerate()
        .map(|(row, key)| {
            let mut new = || {
                first_row.push(row);
                first_row.len() - 1
            };
            match key {
                Some(key) => *seen.entry(key).or_insert_with(new),
                None => new(),
            }
        })
        .collect();
    (image_of_row, first_row)
}

/// Embeds `count` images, decoding each (`load(i)`) only when its batch of
/// [`Encoder::batch`] comes; `done(n)` after each batch of `n`.
pub async fn embed_images_batched(
    encoder: &Encoder,
    count: usize,
    preset: &Preset,
    load: &mut dyn FnMut(usize) -> Result<Rgba, ClipError>,
    done: &mut dyn FnMut(usize),
) -> Result<Embeddings, ClipError> {
    let mut data = Vec::new();
    let mut dim = encoder.config().projection;
    let batch = encoder.batch.max(1);
    for start in (0..count).step_by(batch) {
        let end = (start + batch).min(count);
        let images = (start..end).map(&mut *load).collect::<Result<Vec<_>, _>>()?;
        let embedded = encoder.embed_images(&images, Some(preset)).await?;
        dim = embedded.dim;
        data.extend(embedded.data);
        done(end - start);
    }
    Ok(Embeddings { dim, data })
}

/// A manifest's rows as rows to score, the one mapping every entry point uses: row `k` against
/// image `image_of_row[k]`, its id the row's own or its number from 1, its group the row's (the
/// prompt when it has none), its image named as the row names it.
pub fn manifest_items<'a>(rows: &'a [ManifestRow], image_of_row: &[usize]) -> Vec<Item<'a>> {
    rows.iter()
        .zip(image_of_row)
        .enumerate()
        .map(|(k, (r, &image))| Item {
            id: r.id.clone().unwrap_or_else(|| (k + 1).to_string()),
            group: r.group.clone(),
            prompt: &r.prompt,
            image,
            image_name: &r.image,
        })
        .collect()
}

/// Each row's image among images known by name (a browser's files, the JavaScript API's
/// inputs): the name the row gives, else its file name (a file picked from a folder); of
/// images with the same name, the first.
pub fn match_images(manifest: &str, rows: &[ManifestRow], names: &[&str]) -> Result<Vec<usize>, ClipError> {
    let index: std::collections::HashMap<&str, usize> =
        names.iter().enumerate().rev().map(|(i, &name)| (name, i)).collect();
    rows.iter()
        .enumerate()
        .map(|(k, row)| {
            let file = row.image.rsplit('/').next().unwrap_or(&row.image);
            index.get(row.image.as_str()).or_else(|| index.get(file)).copied().ok_or_else(|| {
                ClipError::Input(format!(
                    "{manifest}: row {}: image `{}` is not among the images given",
                    k + 1,
                    row.image
                ))
            })
        })
        .collect()
}

/// The rows of `prefscope score`: `rows[k]` against image `image_of_row[k]` of `images`
/// (embedded with `scorer`'s preset) in a [`Session`] whose scores split against `u` (the
/// common text direction, [`common_text_direction`], computed once for many calls).
///
/// [`common_text_direction`]: crate::scorer::common_text_direction
pub async fn score_manifest(
    encoder: &Encoder,
    rows: &[ManifestRow],
    image_of_row: &[usize],
    images: Embeddings,
    scorer: Scorer,
    reweight: f32,
    u: Vec<f32>,
) -> Result<Vec<ScoreRow>, ClipError> {
    if !reweight.is_finite() {
        return Err(ClipError::Input(format!("reweight must be a finite number, got {reweight}")));
    }
    if image_of_row.len() != rows.len() {
        return Err(ClipError::Input(format!("{} rows but {} image indices", rows.len(), image_of_row.len())));
    }
    let items = manifest_items(rows, image_of_row);
    let prompts: Vec<&str> = rows.iter().map(|r| r.prompt.as_str()).collect();
    let session = Session::new(encoder, scorer, images, &prompts, Direction::Given(u)).await?;
    session.score(encoder, &items, reweight, None).await
}

#[cfg(test)]
mod tests {
    use prefscope_core::io::record::ManifestRow;

    fn row(id: Option<&str>, image: &str) -> ManifestRow {
        ManifestRow { id: id.map(str::to_string), group: None, prompt: "p".into(), image: image.into() }
    }

    #[test]
    fn manifest_rows_find_their_images_by_path_then_file_name_and_number_their_ids() {
        let rows = [row(None, "a/cat.png"), row(Some("x"), "dog.png"), row(None, "b/cat.png")];
        let found = super::match_images("m.csv", &rows, &["cat.png", "a/cat.png", "dog.png"]).unwrap();
        assert_eq!(found, vec![1, 2, 0]);
        let items = super::manifest_items(&rows, &found);
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["1", "x", "3"]);
        assert_eq!(items[2].image_name, "b/cat.png");
        let err = super::match_images("m.csv", &rows, &["dog.png"]).unwrap_err().to_string();
        assert!(err.contains("m.csv: row 1: image `a/cat.png`"), "{err}");
    }

    #[test]
    fn equal_keys_share_an_image_and_rows_without_one_do_not() {
        let (of_row, first) = super::distinct_images([Some("a"), None, Some("b"), Some("a"), None, Some("b")]);
        assert_eq!(of_row, vec![0, 1, 2, 0, 3, 2]);
        assert_eq!(first, vec![0, 1, 2, 4]);
    }
}
