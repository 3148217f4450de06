//! Score: per prompt, the gallery's images ranked, with score, PickScore-style probability,
//! the LongAlign parts and the reweighted score; the preset and the reweighting factor.

use prefscope_clip::scorer::Scorer;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::{fmt, use_ctx};
use crate::app::Ctx;
use crate::store::{Action, State};

const PRESETS: [Scorer; 4] = [Scorer::PickScore, Scorer::Clip, Scorer::ClipScore, Scorer::Hps];

/// The reweighting slider, shared with the Decompose view.
#[function_component(ReweightSlider)]
pub fn reweight_slider() -> Html {
    let Some(Ctx { state, dispatch }) = use_ctx() else { return html! {} };
    let oninput = Callback::from(move |e: InputEvent| {
        if let Ok(w) = e.target_unchecked_into::<HtmlInputElement>().value().parse::<f32>() {
            dispatch.emit(Action::Reweight(w));
        }
    });
    html! {
        <label class="ps-control">
            { "Reweighting factor w (relevant + w·irrelevant) " }
            <input type="range" min="0" max="1" step="0.01" value={state.reweight.to_string()} {oninput}
                   data-testid="reweight" aria-valuetext={format!("{:.2}", state.reweight)} />
            <output>{ format!("{:.2}", state.reweight) }</output>
        </label>
    }
}

/// The reweighted score of gallery row `k` (image `k` against prompt `p`), from the GPU's
/// matrix when it is current, else from the row's parts.
pub fn reweighted(state: &State, k: usize, p: usize) -> f32 {
    let scored = state.scored.as_ref();
    let cols = scored.map_or(1, |s| s.embedded.prompts.len());
    match (&state.reweighted, scored) {
        (Some(r), _) if r.0 == state.reweight && k * cols + p < r.1.len() => r.1[k * cols + p],
        (_, Some(s)) => s.rows[k].relevant + state.reweight * s.rows[k].irrelevant,
        _ => f32::NAN,
    }
}

#[function_component(ScoreView)]
pub fn score_view() -> Html {
    let Some(Ctx { state, dispatch }) = use_ctx() else { return html! {} };
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
                        <option value={p.name()} selected={*p == state.scorer}>{ p.name() }</option>
                    }) }
                </select>
            </label>
            <ReweightSlider />
        </div>
    };
    let Some(scored) = state.scored.clone() else {
        return html! { <section class="ps-view">{ controls }<p class="ps-muted">{ "Scoring the demo gallery…" }</p></section> };
    };
    let model = state.model.as_ref().map_or_else(String::new, |m| m.name.clone());
    // Rows are in gallery order: prompt p's candidates follow each other.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (k, row) in scored.rows.iter().enumerate() {
        match groups.last_mut() {
            Some((_, ks)) if scored.rows[ks[0]].prompt == row.prompt => ks.push(k),
            _ => groups.push((groups.len(), vec![k])),
        }
    }
    let tables = groups.into_iter().map(|(p, mut ks)| {
        ks.sort_by_key(|&k| scored.rows[k].rank);
        let prompt = scored.rows[ks[0]].prompt.clone();
        let segments = scored.embedded.segments.get(p).copied().unwrap_or(1);
        html! {
            <article class="ps-prompt">
                <h3>{ prompt.clone() }
                    { (segments > 1).then(|| html! { <span class="ps-tag" title="longer than the text context: encoded in segments and averaged (LongAlign)">{ format!("{segments} segments") }</span> }) }
                </h3>
                <table class="ps-table">
                    <thead><tr>
                        <th scope="col">{ "rank" }</th><th scope="col">{ "image" }</th><th scope="col">{ "score" }</th>
                        <th scope="col">{ "probability" }</th><th scope="col">{ "relevant" }</th><th scope="col">{ "irrelevant" }</th>
                        <th scope="col">{ "reweighted" }</th><th scope="col" title="ground truth of the shapes world">{ "alignment · quality" }</th>
                    </tr></thead>
                    <tbody>
                    { for ks.iter().map(|&k| {
                        let r = &scored.rows[k];
                        html! {
                            <tr data-testid="ranking-row" data-prompt={prompt.clone()} data-id={r.id.clone()}
                                data-rank={r.rank.to_string()} data-score={r.score.to_string()}
                                data-relevant={r.relevant.to_string()} data-irrelevant={r.irrelevant.to_string()}
                                data-probability={r.probability.to_string()}>
                                <td>{ r.rank }</td>
                                <td class="ps-thumb">
                                    { scored.thumbnails.get(&r.id).map(|src| html! { <img src={src.clone()} alt={format!("candidate {}", r.id)} width="48" height="48" /> }) }
                                    <span>{ r.id.clone() }</span>
                                </td>
                                <td>{ fmt(r.score as f64) }</td>
                                <td><span class="ps-prob" title={fmt(r.probability as f64)}><span style={format!("width:{:.1}%", 100.0 * r.probability)}></span></span>{ format!(" {:.3}", r.probability) }</td>
                                <td>{ fmt(r.relevant as f64) }</td>
                                <td>{ fmt(r.irrelevant as f64) }</td>
                                <td>{ fmt(reweighted(&state, k, p) as f64) }</td>
                                <td class="ps-muted">{ format!("{:.2} · {:.2}", r.alignment, r.quality) }</td>
                            </tr>
                        }
                    }) }
                    </tbody>
                </table>
            </article>
        }
    });
    html! {
        <section class="ps-view">
            { controls }
            <p class="ps-muted" data-testid="scored-time" data-ms={format!("{:.0}", scored.millis)}>
                { format!("{} images × {} prompts scored by the {model} ({}); split against the common direction of 64 shapes-world prompts.",
                    scored.embedded.images.len(), scored.embedded.prompts.len(), scored.scorer.name()) }
            </p>
            { for tables }
        </section>
    }
}
