//! Score: per prompt, the gallery's images ranked, with score, PickScore-style probability,
//! the LongAlign parts and the reweighted score; the preset and the reweighting factor.

use std::rc::Rc;

use prefscope_clip::scorer::Scorer;
use prefscope_core::scoring::diversity::SetSplit;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use super::{files_of, fmt};
use crate::store::{Action, Diversity, Inputs, Request, Row, Scored, Source};

const PRESETS: [Scorer; 4] = [Scorer::PickScore, Scorer::Clip, Scorer::ClipScore, Scorer::Hps];

#[derive(Properties, PartialEq)]
pub struct ReweightProps {
    pub reweight: f32,
    pub dispatch: Callback<Action>,
}

/// The reweighting slider, shared with the Decompose view.
#[function_component(ReweightSlider)]
pub fn reweight_slider(props: &ReweightProps) -> Html {
    let (reweight, dispatch) = (props.reweight, props.dispatch.clone());
    let oninput = Callback::from(move |e: InputEvent| {
        if let Ok(w) = e.target_unchecked_into::<HtmlInputElement>().value().parse::<f32>() {
            dispatch.emit(Action::Reweight(w));
        }
    });
    html! {
        <label class="ps-control">
            { "Reweighting factor w (relevant + w·irrelevant) " }
            <input type="range" min="0" max="1" step="0.01" value={reweight.to_string()} {oninput}
                   data-testid="reweight" aria-valuetext={format!("{reweight:.2}")} />
            <output>{ format!("{reweight:.2}") }</output>
        </label>
    }
}

/// The reweighted score of row `r` at `weight`: from the GPU's matrix when it is for that
/// weight, else from the row's parts.
pub fn reweighted(weight: f32, matrix: Option<&(f32, Vec<f32>)>, scored: &Scored, r: &Row) -> f32 {
    match matrix {
        Some(w) if w.0 == weight && scored.cell(r) < w.1.len() => w.1[scored.cell(r)],
        _ => r.relevant + weight * r.irrelevant,
    }
}

/// The user's images, prompts and manifest, and the button that scores them.
#[derive(Properties, PartialEq)]
struct InputsProps {
    inputs: Inputs,
    source: Source,
    dispatch: Callback<Action>,
}

#[function_component(InputsPanel)]
fn inputs_panel(props: &InputsProps) -> Html {
    let prompts = use_state(String::new);
    let urls = use_state(String::new);
    let dragging = use_state(|| false);
    let InputsProps { inputs, source, dispatch } = props;
    let on_pick = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            dispatch.emit(Action::Request(Request::IngestFiles(files_of(input.files()))));
            input.set_value("");
        })
    };
    let on_drop = {
        let (dispatch, dragging) = (dispatch.clone(), dragging.clone());
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(false);
            dispatch.emit(Action::Request(Request::IngestFiles(files_of(e.data_transfer().and_then(|d| d.files())))));
        })
    };
    let on_over = {
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(true);
        })
    };
    let on_leave = {
        let dragging = dragging.clone();
        Callback::from(move |_: DragEvent| dragging.set(false))
    };
    let on_prompts = {
        let prompts = prompts.clone();
        Callback::from(move |e: InputEvent| prompts.set(e.target_unchecked_into::<HtmlTextAreaElement>().value()))
    };
    let on_urls = {
        let urls = urls.clone();
        Callback::from(move |e: InputEvent| urls.set(e.target_unchecked_into::<HtmlTextAreaElement>().value()))
    };
    let on_fetch = {
        let (dispatch, urls) = (dispatch.clone(), urls.clone());
        Callback::from(move |_| {
            let list: Vec<String> = urls.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
            dispatch.emit(Action::Request(Request::FetchImages(list)));
        })
    };
    let on_score = {
        let (dispatch, prompts) = (dispatch.clone(), prompts.clone());
        Callback::from(move |_| {
            let list: Vec<String> =
                prompts.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
            dispatch.emit(Action::Prompts(list));
            dispatch.emit(Action::ScoreSource(Source::User));
        })
    };
    let on_demo = {
        let dispatch = dispatch.clone();
        Callback::from(move |_| dispatch.emit(Action::ScoreSource(Source::Demo)))
    };
    let on_clear = {
        let dispatch = dispatch.clone();
        Callback::from(move |_| {
            dispatch.emit(Action::ClearImages);
            dispatch.emit(Action::Manifest(None));
        })
    };
    let manifest = inputs.manifest.as_ref().map(|(name, rows)| format!(" · manifest {name} ({} rows)", rows.len()));
    html! {
        <details class="ps-inputs" open={*source == Source::User}>
            <summary>{ "Your images and prompts" }</summary>
            <div class={classes!("ps-drop", dragging.then_some("ps-dragging"))} ondrop={on_drop} ondragover={on_over} ondragleave={on_leave}
                 data-testid="drop-zone">
                <p>{ "Drop images, a folder or a manifest (CSV/JSONL with prompt, image, group, id) here, or " }
                    <label class="ps-file">{ "pick files" }
                        <input type="file" multiple=true accept="image/*,.csv,.jsonl,.ndjson,.json" onchange={on_pick.clone()} data-testid="image-files" /></label>
                    { " or " }
                    <label class="ps-file">{ "a folder" }<input type="file" webkitdirectory=true onchange={on_pick} /></label>
                </p>
                <p class="ps-muted" data-testid="inputs-summary">{ format!("{} images loaded", inputs.images.len()) }{ manifest }</p>
            </div>
            <div class="ps-grid">
                <label class="ps-stack">{ "Prompts, one per line (every image is ranked against each; a manifest overrides)" }
                    <textarea rows="4" value={(*prompts).clone()} oninput={on_prompts} data-testid="prompts" /></label>
                <div class="ps-stack">
                    <label class="ps-stack">{ "Image URLs, one per line" }
                        <textarea rows="3" value={(*urls).clone()} oninput={on_urls} data-testid="image-urls" /></label>
                    <button type="button" onclick={on_fetch}>{ "Fetch images" }</button>
                </div>
            </div>
            <div class="ps-controls">
                <button type="button" class="ps-primary" onclick={on_score} data-testid="score-inputs">{ "Score your inputs" }</button>
                <button type="button" onclick={on_demo}>{ "Back to the demo gallery" }</button>
                <button type="button" onclick={on_clear}>{ "Clear images and manifest" }</button>
            </div>
        </details>
    }
}

/// What the Score view shows and changes.
#[derive(Properties, PartialEq)]
pub struct ScoreProps {
    pub scored: Option<Rc<Scored>>,
    pub scorer: Scorer,
    pub source: Source,
    pub inputs: Inputs,
    /// The loaded model's name.
    pub model: Option<String>,
    pub reweight: f32,
    /// The GPU's reweighted matrix and the weight it is for.
    pub reweighted: Option<Rc<(f32, Vec<f32>)>>,
    /// The diversity split of `scored`, once computed.
    pub diversity: Option<Rc<Diversity>>,
    pub dispatch: Callback<Action>,
}

#[function_component(ScoreView)]
pub fn score_view(props: &ScoreProps) -> Html {
    let ScoreProps { scored, scorer, source, inputs, model, reweight, reweighted: matrix, diversity, dispatch } = props;
    // Once rows are in the DOM: the last stage of the first-result breakdown.
    let shown = scored.as_ref().map(|s| Rc::as_ptr(s) as usize);
    use_effect_with(shown, |shown| {
        if shown.is_some() {
            crate::scope::mark("rankings-shown");
        }
    });
    let onchange = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: Event| {
            if let Ok(s) = Scorer::parse(&e.target_unchecked_into::<HtmlSelectElement>().value()) {
                dispatch.emit(Action::Scorer(s));
            }
        })
    };
    let controls = html! {
        <div class="ps-controls">
            <label class="ps-control">{ "Preset " }
                <select {onchange} data-testid="preset">
                    { for PRESETS.iter().map(|p| html! {
                        <option value={p.name()} selected={p == scorer}>{ p.name() }</option>
                    }) }
                </select>
            </label>
            <ReweightSlider reweight={*reweight} dispatch={dispatch.clone()} />
        </div>
    };
    let panel = html! { <InputsPanel inputs={inputs.clone()} source={source.clone()} dispatch={dispatch.clone()} /> };
    let Some(scored) = scored.clone() else {
        let what = if *source == Source::Demo { "Scoring the demo gallery…" } else { "Scoring your inputs…" };
        return html! { <section class="ps-view">{ panel }{ controls }<p class="ps-muted">{ what }</p></section> };
    };
    let model = model.clone().unwrap_or_default();
    // Groups in order of first appearance.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (k, row) in scored.rows.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == row.group) {
            Some((_, ks)) => ks.push(k),
            None => groups.push((row.group.clone(), vec![k])),
        }
    }
    let truth = scored.source == Source::Demo;
    let group_diversity = |group: &str| {
        let (_, per) = diversity.as_deref()?;
        per.iter().find(|g| g.group.as_deref() == Some(group)).map(|g| diversity_line(g, group))
    };
    let tables = groups.into_iter().map(|(group, mut ks)| {
        ks.sort_by_key(|&k| scored.rows[k].rank);
        let first = &scored.rows[ks[0]];
        let same_prompt = ks.iter().all(|&k| scored.rows[k].prompt == first.prompt);
        let title = if same_prompt { first.prompt.clone() } else { format!("group {group}") };
        let segments = if same_prompt { scored.segments.get(first.text).copied().unwrap_or(1) } else { 1 };
        html! {
            <article class="ps-prompt">
                <h2>{ title }
                    { (segments > 1).then(|| html! { <span class="ps-tag" title="longer than the text context: encoded in segments and averaged (LongAlign)">{ format!("{segments} segments") }</span> }) }
                </h2>
                { group_diversity(&group).unwrap_or_default() }
                <table class="ps-table">
                    <thead><tr>
                        <th scope="col">{ "rank" }</th><th scope="col">{ "image" }</th>
                        { (!same_prompt).then(|| html! { <th scope="col">{ "prompt" }</th> }) }
                        <th scope="col">{ "score" }</th>
                        <th scope="col">{ "probability" }</th><th scope="col">{ "relevant" }</th><th scope="col">{ "irrelevant" }</th>
                        <th scope="col">{ "reweighted" }</th>
                        { truth.then(|| html! { <th scope="col" title="ground truth of the shapes world">{ "alignment · quality" }</th> }) }
                    </tr></thead>
                    <tbody>
                    { for ks.iter().map(|&k| {
                        let r = &scored.rows[k];
                        let name = scored.image_names.get(r.image).cloned().unwrap_or_default();
                        html! {
                            <tr data-testid="ranking-row" data-prompt={r.prompt.clone()} data-group={r.group.clone()} data-id={r.id.clone()}
                                data-rank={r.rank.to_string()} data-score={r.score.to_string()}
                                data-relevant={r.relevant.to_string()} data-irrelevant={r.irrelevant.to_string()}
                                data-probability={r.probability.to_string()}>
                                <td>{ r.rank }</td>
                                <td class="ps-thumb">
                                    { scored.thumbnails.get(r.image).cloned().flatten().map(|src| html! { <img src={src} alt={format!("image {name}")} width="48" height="48" /> }) }
                                    <span>{ if truth { r.id.clone() } else { name } }</span>
                                </td>
                                { (!same_prompt).then(|| html! { <td>{ r.prompt.clone() }</td> }) }
                                <td>{ fmt(r.score as f64) }</td>
                                <td><span class="ps-prob" title={fmt(r.probability as f64)}><span style={format!("width:{:.1}%", 100.0 * r.probability)}></span></span>{ format!(" {:.3}", r.probability) }</td>
                                <td>{ fmt(r.relevant as f64) }</td>
                                <td>{ fmt(r.irrelevant as f64) }</td>
                                <td>{ fmt(reweighted(*reweight, matrix.as_deref(), &scored, r) as f64) }</td>
                                { r.truth.map(|(a, q)| html! { <td class="ps-muted">{ format!("{a:.2} · {q:.2}") }</td> }) }
                            </tr>
                        }
                    }) }
                    </tbody>
                </table>
            </article>
        }
    });
    let what = if truth { "the demo gallery" } else { "your inputs" };
    html! {
        <section class="ps-view">
            { panel }
            { controls }
            <p class="ps-muted" data-testid="scored-time" data-ms={format!("{:.0}", scored.millis)} data-source={if truth { "demo" } else { "user" }}>
                { format!("{what}: {} images × {} prompts scored by the {model} ({}); split against the common direction of {}.",
                    scored.image_names.len(), scored.prompts.len(), scored.scorer.name(), scored.reference) }
            </p>
            { diversity.as_deref().map(|(all, _)| diversity_line(all, "")).unwrap_or_default() }
            { for tables }
        </section>
    }
}

/// One set's diversity split: the part its prompts do not explain (SCE) and the part they do.
fn diversity_line(s: &SetSplit, group: &str) -> Html {
    let what = if group.is_empty() { "All rows" } else { "This group" };
    let Some(split) = &s.split else {
        return html! {
            <p class="ps-muted" data-testid="diversity" data-group={group.to_string()}>
                { format!("{what}: one image, no diversity to split.") }
            </p>
        };
    };
    html! {
        <p class="ps-muted" data-testid="diversity" data-group={group.to_string()}
           data-sce={split.sce.to_string()} data-text-part={split.text_part.to_string()}
           title="Schur complement entropy (Dissecting CLIP), cosine kernel: the image covariance left after what the prompt embeddings explain, as exp(entropy); 1 means nothing is left. prefscope diversity computes the same.">
            { format!("{what} ({} images, {} prompts): diversity the prompts do not explain {:.4}, diversity they explain {:.4}",
                s.images, s.prompts, split.sce, split.text_part) }
        </p>
    }
}
