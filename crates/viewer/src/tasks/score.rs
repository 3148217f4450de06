//! Scoring: the demo gallery or the user's inputs, split into relevant and irrelevant parts
//! against the common direction, and the reweighting the slider asks for.

use prefscope_clip::pipeline::{manifest_items, match_images};
use prefscope_clip::scorer::{Item, Reference, Scorer};
use prefscope_clip::session::{Direction, Session};
use prefscope_clip::Rgba;
use prefscope_core::scoring::embedding::Embeddings;
use prefscope_synth::demo::{embed_gallery, score_embedded, SIZE};
use yew::Callback;

use super::model::reference_direction;
use super::{data_url, now, progress, yield_now};
use crate::compute::Model;
use crate::diversity::DiversityInput;
use crate::store::{Action, Inputs, Row, Scored, Source};

/// Embeds the demo gallery once, scores it (the rows `prefscope demo` prints) and splits every
/// image × prompt score, on the model's device.
pub async fn score_demo(
    model: &Model,
    scorer: Scorer,
    reweight: f32,
    dispatch: &Callback<Action>,
) -> Result<Scored, String> {
    let entries = prefscope_synth::gallery::demo();
    let encoder = &model.encoder;
    let candidates: usize = entries.iter().map(|e| e.candidates.len()).sum();
    dispatch.emit(Action::Progress(Some(progress(&format!("embedding {candidates} images and their prompts"), None))));
    yield_now().await;
    crate::scope::mark("gallery-generated");
    let reference = Reference::Prompts(prefscope_synth::demo::reference_prompts());
    // The bundled model's direction ships with it (for presets that take prompts as written),
    // computed in f32: another dtype computes its own, as the command does.
    let f32 = model.encoder.dtype() == prefscope_clip::Dtype::F32;
    let u = if model.bundled && f32 && scorer.text("").is_empty() {
        prefscope_synth::demo::bundled_reference_direction()
    } else {
        reference_direction(model, scorer, &reference).await?
    };
    crate::scope::mark("reference-direction");
    let session = embed_gallery(encoder, &entries, scorer, Some(&u)).await.map_err(|e| e.to_string())?;
    crate::scope::mark("gallery-embedded");
    // The split of every candidate × prompt, once: the Decompose view shows it all, the rows
    // read their own parts from it.
    let split = session.split(encoder).await.map_err(|e| e.to_string())?;
    crate::scope::mark("gallery-split");
    let gallery =
        score_embedded(encoder, &entries, &session, reweight, Some(&split)).await.map_err(|e| e.to_string())?;
    crate::scope::mark("gallery-scored");
    let mut thumbnails = Vec::new();
    let mut image_names = Vec::new();
    let mut rows = Vec::new();
    let mut k = 0;
    for (p, entry) in entries.iter().enumerate() {
        for c in &entry.candidates {
            let image = c.sample.render(SIZE);
            thumbnails.push(data_url(image.width, image.height, &image.data));
            image_names.push(c.id.clone());
            let g = &gallery[k];
            rows.push(Row {
                id: g.id.clone(),
                group: format!("p{p}"),
                prompt: g.prompt.clone(),
                image: k,
                text: p,
                rank: g.rank,
                score: g.score,
                relevant: g.relevant,
                irrelevant: g.irrelevant,
                probability: g.probability,
                truth: Some((g.alignment, g.quality)),
            });
            k += 1;
        }
    }
    crate::scope::mark("thumbnails");
    let diversity_input = diversity_of(&rows, &session.images, &session.prompts.embeddings);
    Ok(Scored {
        scorer,
        source: Source::Demo,
        rows,
        image_names,
        prompts: entries.iter().map(|e| e.prompt.text.clone()).collect(),
        segments: session.prompts.segments.clone(),
        thumbnails,
        reference: format!(
            "{} shapes-world prompts (the gallery's reference set)",
            prefscope_synth::demo::reference_prompts().len()
        ),
        split,
        diversity_input,
        millis: now(),
    })
}

/// The diversity split's input from scored rows: each row's prompt and image (indices into
/// `prompts` and `images`) and its group.
fn diversity_of(rows: &[Row], images: &Embeddings, prompts: &Embeddings) -> Option<DiversityInput> {
    let rows: Vec<(usize, usize, &str)> = rows.iter().map(|r| (r.text, r.image, r.group.as_str())).collect();
    DiversityInput::of(&rows, images, prompts)
}

/// Scores the user's inputs: each manifest row's image against its prompt, or every image
/// against every typed prompt; the common direction from the bundled reference set or the
/// user's prompts.
pub async fn score_user(
    model: &Model,
    inputs: &Inputs,
    scorer: Scorer,
    reweight: f32,
    dispatch: &Callback<Action>,
) -> Result<Scored, String> {
    let encoder = &model.encoder;
    let names: Vec<&str> = inputs.images.iter().map(|im| im.name.as_str()).collect();
    let items: Vec<Item<'_>> = match &inputs.manifest {
        Some((name, rows)) => {
            let found = match_images(name, rows, &names).map_err(|e| format!("{e} (add the file or its folder)"))?;
            manifest_items(rows, &found)
        }
        None => {
            if inputs.prompts.is_empty() || inputs.images.is_empty() {
                return Err("add at least one image and one prompt (or a manifest) to score".into());
            }
            // Every image against every typed prompt, each row named by its image.
            let mut items = Vec::with_capacity(inputs.prompts.len() * inputs.images.len());
            for prompt in &inputs.prompts {
                for (image, im) in inputs.images.iter().enumerate() {
                    items.push(Item { id: im.name.clone(), group: None, prompt, image, image_name: &im.name });
                }
            }
            items
        }
    };
    let mut prompts: Vec<String> = Vec::new();
    for item in &items {
        if !prompts.iter().any(|p| p == item.prompt) {
            prompts.push(item.prompt.to_string());
        }
    }
    dispatch.emit(Action::Progress(Some(progress(
        &format!("embedding {} images and {} prompts", inputs.images.len(), prompts.len()),
        None,
    ))));
    yield_now().await;
    let reference = if inputs.bundled_reference { Reference::Bundled } else { Reference::Prompts(prompts.clone()) };
    let reference_name = match &reference {
        Reference::Bundled => format!("the {} bundled reference prompts", reference.prompts().len()),
        Reference::Prompts(p) => format!("your {} prompts", p.len()),
    };
    // The prompts run through the text tower once: for the scores, the split and (when they
    // are the reference set) the common direction.
    let direction = match &reference {
        Reference::Prompts(_) => Direction::OfPrompts,
        Reference::Bundled => Direction::Given(reference_direction(model, scorer, &reference).await?),
    };
    let rgba: Vec<Rgba> = inputs.images.iter().map(|im| im.rgba.clone()).collect();
    let session = Session::embed(encoder, scorer, &rgba, &prompts, direction).await.map_err(|e| e.to_string())?;
    // The split of every image × prompt, once (the rows read their parts from it).
    let split = session.split(encoder).await.map_err(|e| e.to_string())?;
    let scored = session.score(encoder, &items, reweight, Some(&split)).await.map_err(|e| e.to_string())?;
    let rows = scored
        .into_iter()
        .zip(&items)
        .map(|(r, item)| Row {
            id: r.id,
            group: r.group,
            text: prompts.iter().position(|p| p == item.prompt).unwrap_or(0),
            prompt: r.prompt,
            image: item.image,
            rank: r.rank,
            score: r.score,
            relevant: r.relevant,
            irrelevant: r.irrelevant,
            probability: r.probability,
            truth: None,
        })
        .collect::<Vec<Row>>();
    // Rows pair an image with its prompt only with a manifest (typed prompts rank every image
    // against every prompt, a cross product the split has nothing to say about).
    let diversity_input = match inputs.manifest {
        Some(_) => diversity_of(&rows, &session.images, &session.prompts.embeddings),
        None => None,
    };
    Ok(Scored {
        scorer,
        source: Source::User,
        rows,
        image_names: inputs.images.iter().map(|im| im.name.clone()).collect(),
        prompts,
        segments: session.prompts.segments.clone(),
        thumbnails: inputs.images.iter().map(|im| im.thumbnail.clone()).collect(),
        reference: reference_name,
        split,
        diversity_input,
        millis: now(),
    })
}

/// `relevant + w·irrelevant` for every image × prompt: the GPU kernel over the resident split,
/// or core's formula on the CPU path.
pub async fn reweight(scored: &Scored, weight: f32) -> Result<Vec<f32>, String> {
    scored.split.reweighted(weight).await.map_err(|e| e.to_string())
}
