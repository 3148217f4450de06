//! The Pairs view's work: labelled pairs from a file or a URL scored by the model (with their
//! preference strength), reward-ensemble rows, annotated pairs' groups, and the bundled set.

use std::rc::Rc;

use bytes::Bytes;
use prefscope_clip::pairs::pair_probabilities;
use prefscope_clip::Rgba;
use prefscope_core::io::record::ImageRef;
use yew::Callback;

use super::files::decode_image;
use super::{data_url, is_url, progress, yield_now};
use crate::compute::Model;
use crate::fetch::fetch_bytes;
use crate::store::{Action, Pairs, UserImage};

/// Labelled pairs from a picked file (images inline, or by the name of an image loaded in
/// the Score view), scored by the loaded model.
pub async fn pairs_file(
    model: Option<Rc<Model>>,
    file: web_sys::File,
    loaded: &[Rc<UserImage>],
    dispatch: &Callback<Action>,
) -> Result<Pairs, String> {
    let name = file.name();
    let model = model.ok_or_else(|| format!("{name}: the model is still loading; try again in a moment"))?;
    let bytes = gloo::file::futures::read_as_bytes(&gloo::file::Blob::from(file))
        .await
        .map_err(|e| format!("{name}: cannot read the file: {e}"))?;
    load_pairs(&model, &name, bytes, None, loaded, dispatch).await
}

/// Reward-ensemble rows (`prefscope strength`'s input, CDR's strong and weak log-probs
/// included) as the Pairs view shows them: strength and bands, no images. `None` when the
/// file is not such rows (it has no `chosen_rewards` nor strong/weak log-probs in row 1).
fn ensemble_pairs(name: &str, bytes: &[u8]) -> Option<Result<Pairs, String>> {
    use prefscope_core::preference::strength::{bands, pair_strength, DEFAULT_BANDS};
    let columns = prefscope_core::io::read::column_names(name, bytes);
    if !columns.iter().any(|c| c == "chosen_rewards" || c == "chosen_strong_logps") {
        return None;
    }
    let rows = match prefscope_core::io::read::read_ensemble(name, Bytes::copy_from_slice(bytes)) {
        Ok(rows) => rows,
        Err(e) => return Some(Err(e.to_string())),
    };
    let (mean, std): (Vec<f64>, Vec<f64>) = rows.iter().map(|r| pair_strength(&r.chosen, &r.rejected)).unzip();
    let band = bands(&mean, DEFAULT_BANDS);
    let pairs = rows
        .iter()
        .map(|r| prefscope_clip::pairs::PairProbabilities {
            caption: r.id.clone(),
            p0: f32::NAN,
            p1: f32::NAN,
            label_0: 1.0,
        })
        .collect();
    let strength = mean.into_iter().zip(std).zip(band).map(|((m, s), b)| (m, s, b)).collect();
    Some(Ok(Pairs { source: name.to_string(), pairs, thumbnails: Vec::new(), strength, flipped: None, groups: None }))
}

/// Pairs with annotators (`prefscope groups`' input) as the Pairs view shows them: the groups
/// `prefscope groups` finds with its defaults (EM's kernels on WebGPU when the page has it),
/// and a GPM head (`--gpm`) when the fit is small enough to stay interactive. `None` when the
/// file has no `user_id` and `features_0`.
async fn annotated_pairs(name: &str, bytes: &[u8], gpu: Option<&prefscope_gpu::Gpu>) -> Option<Result<Pairs, String>> {
    use prefscope_core::preference::gpm::{fit_gpm, GpmOptions};
    use prefscope_core::preference::groups::{fit_groups, fit_prepared, prepare, AnnotatedPairs, GroupOptions};
    let columns = prefscope_core::io::read::column_names(name, bytes);
    if !(columns.iter().any(|c| c == "user_id") && columns.iter().any(|c| c == "features_0")) {
        return None;
    }
    Some(async {
        let rows = prefscope_core::io::read::read_annotated_pairs(name, Bytes::copy_from_slice(bytes))
            .map_err(|e| e.to_string())?;
        let annotated = AnnotatedPairs {
            users: &rows.users,
            dim: rows.dim,
            features_0: &rows.features_0,
            features_1: &rows.features_1,
            label_0: &rows.label_0,
        };
        // Newton steps cost pairs · width² each: past the bound the fit is left to the command.
        let (n, d) = (rows.users.len() as u64, rows.dim as u64);
        if n.saturating_mul(d).saturating_mul(d) > GROUPS_WORK {
            return Err(format!(
                "{name}: {n} pairs of {d} features are more than the page fits interactively; run `prefscope groups --input {name}`"
            ));
        }
        let options = GroupOptions::default();
        // EM's kernels on WebGPU when the page has it; on the CPU when the GPU cannot take the
        // pairs or fails (the panel says which).
        let on_gpu = match gpu {
            Some(gpu) => {
                let prepared = prepare(&annotated).map_err(|e| format!("{name}: {e}"))?;
                Some(match gpu.annotated_pairs(&prepared) {
                    Ok(device) => fit_prepared(&prepared, &options, &device).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                })
            }
            None => None,
        };
        let (fit, device) = match on_gpu {
            Some(Ok(fit)) => (fit, "webgpu".to_string()),
            failed => {
                let fit = fit_groups(&annotated, &options).map_err(|e| format!("{name}: {e}"))?;
                (fit, failed.map_or("cpu".to_string(), |e| format!("cpu ({})", e.err().unwrap_or_default())))
            }
        };
        let options = GpmOptions::default();
        let small = n.saturating_mul(d).saturating_mul(options.steps as u64) <= GPM_WORK;
        let gpm = if small { Some(fit_gpm(&annotated, &options).map_err(|e| format!("{name}: {e}"))?) } else { None };
        Ok(Pairs {
            source: name.to_string(),
            pairs: Vec::new(),
            thumbnails: Vec::new(),
            strength: Vec::new(),
            flipped: None,
            groups: Some(crate::store::AnnotatorGroups { fit, gpm, device }),
        })
    }
    .await)
}

/// Pairs × features × steps past which the page leaves the GPM fit to `prefscope groups --gpm`.
const GPM_WORK: u64 = 20_000_000;
/// Pairs × features² past which the page leaves the groups to `prefscope groups`.
const GROUPS_WORK: u64 = 200_000_000;

/// Labelled pairs from a file's bytes: images inline, by URL (relative ones against `base`,
/// the file's own URL when it was fetched), or by the name of an image already loaded in the
/// Score view; then the model's probabilities for each pair. Reward-ensemble rows give their
/// strength instead.
pub async fn load_pairs(
    model: &Model,
    name: &str,
    bytes: Vec<u8>,
    base: Option<&str>,
    loaded: &[Rc<UserImage>],
    dispatch: &Callback<Action>,
) -> Result<Pairs, String> {
    if let Some(pairs) = ensemble_pairs(name, &bytes) {
        return pairs;
    }
    if let Some(pairs) = annotated_pairs(name, &bytes, model.encoder.gpu()).await {
        return pairs;
    }
    let rows = prefscope_core::io::read::read_pairs(name, Bytes::from(bytes)).map_err(|e| e.to_string())?;
    let mut images = Vec::with_capacity(2 * rows.len());
    let mut thumbnails = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        dispatch.emit(Action::Progress(Some(progress(
            &format!("decoding the images of {} pairs", rows.len()),
            Some(i as f64 / rows.len() as f64),
        ))));
        let mut pair = Vec::with_capacity(2);
        for (column, image) in [("jpg_0", &row.jpg_0), ("jpg_1", &row.jpg_1)] {
            let label = format!("{name} row {} {column}", i + 1);
            let decoded = match image {
                ImageRef::Bytes(b) => decode_image(&label, b)?,
                ImageRef::Path(p) => {
                    let file = p.rsplit('/').next().unwrap_or(p);
                    if let Some(im) = loaded.iter().find(|im| im.name == *p || im.name == file) {
                        UserImage { name: label, rgba: im.rgba.clone(), thumbnail: im.thumbnail.clone() }
                    } else {
                        let url = match (is_url(p), base) {
                            (true, _) => p.clone(),
                            (false, Some(base)) => web_sys::Url::new_with_base(p, base)
                                .map(|u| u.href())
                                .map_err(|_| format!("{label}: `{p}` is not a URL"))?,
                            (false, None) => {
                                return Err(format!(
                                    "{label}: `{p}` is a path; load that image in the Score view first, or give URLs or inline bytes"
                                ))
                            }
                        };
                        let b = fetch_bytes(&url, &|_, _| {}).await.map_err(|e| format!("{label}: {e}"))?;
                        decode_image(&label, &b)?
                    }
                }
            };
            pair.push(decoded);
        }
        let (b, a) = (pair.pop(), pair.pop());
        if let (Some(a), Some(b)) = (a, b) {
            thumbnails.push((a.thumbnail.clone(), b.thumbnail.clone()));
            images.push(a.rgba);
            images.push(b.rgba);
        }
    }
    dispatch.emit(Action::Progress(Some(progress(&format!("scoring {} pairs", rows.len()), None))));
    yield_now().await;
    let captions: Vec<String> = rows.iter().map(|r| r.caption.clone()).collect();
    let labels: Vec<f32> = rows.iter().map(|r| r.label_0 as f32).collect();
    let pairs =
        pair_probabilities(&model.encoder, &captions, &images, &labels).await.map_err(|e| format!("{name}: {e}"))?;
    // Three more passes of the towers: for files of at most MAX_STRENGTH_PAIRS pairs
    // (`prefscope pairs --strength` has no limit).
    let strength = if rows.len() <= MAX_STRENGTH_PAIRS {
        pair_strength(model, &captions, &images, &labels).await.map_err(|e| format!("{name}: {e}"))?
    } else {
        Vec::new()
    };
    Ok(Pairs { source: name.to_string(), pairs, thumbnails, strength, flipped: None, groups: None })
}

/// Preference strength of each pair under the Pairs view's ensemble (the model under
/// `prefscope_clip::pairs::STRENGTH_SCORERS`), banded at the default percentiles.
async fn pair_strength(
    model: &Model,
    captions: &[String],
    images: &[Rgba],
    labels: &[f32],
) -> Result<Vec<(f64, f64, prefscope_core::preference::strength::Band)>, prefscope_clip::ClipError> {
    use prefscope_core::preference::strength::{bands, pair_strength, DEFAULT_BANDS};
    let scorers = prefscope_clip::pairs::STRENGTH_SCORERS;
    let d = prefscope_clip::pairs::ensemble_differences(&model.encoder, captions, images, labels, &scorers).await?;
    let (mean, std): (Vec<f64>, Vec<f64>) = d.iter().map(|(c, r)| pair_strength(c, r)).unzip();
    let band = bands(&mean, DEFAULT_BANDS);
    Ok(mean.into_iter().zip(std).zip(band).map(|((m, s), b)| (m, s, b)).collect())
}

/// The Pairs view's bundled set: shapes-world pairs with 15% of their labels flipped
/// (`prefscope_synth::flipped_pairs`), scored and banded by the demo model's ensemble.
pub async fn bundled_pairs(model: &Model, dispatch: &Callback<Action>) -> Result<Pairs, String> {
    let set = prefscope_synth::flipped_pairs::bundled();
    dispatch.emit(Action::Progress(Some(progress(&format!("scoring {} bundled pairs", set.len()), None))));
    yield_now().await;
    let mut images = Vec::with_capacity(2 * set.len());
    let mut thumbnails = Vec::with_capacity(set.len());
    for p in &set {
        let [a, b] = [0, 1].map(|k| prefscope_synth::demo::rgba(&format!("{} image {k}", p.id), &p.images[k]));
        let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
        thumbnails.push((data_url(a.width, a.height, &a.data), data_url(b.width, b.height, &b.data)));
        images.push(a);
        images.push(b);
    }
    let captions: Vec<String> = set.iter().map(|p| p.caption.clone()).collect();
    let labels: Vec<f32> = set.iter().map(|p| p.label_0).collect();
    let pairs = pair_probabilities(&model.encoder, &captions, &images, &labels).await.map_err(|e| e.to_string())?;
    let strength = pair_strength(model, &captions, &images, &labels).await.map_err(|e| e.to_string())?;
    let flipped = Some(set.iter().map(|p| p.flipped).collect());
    Ok(Pairs { source: BUNDLED_PAIRS.to_string(), pairs, thumbnails, strength, flipped, groups: None })
}

/// The most pairs of a file the view computes preference strength for.
pub const MAX_STRENGTH_PAIRS: usize = 2000;

/// The bundled pair set's name in the view.
pub const BUNDLED_PAIRS: &str = "bundled shapes-world pairs (15% of labels flipped)";
