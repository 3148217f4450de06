//! Decompose: every image × prompt score split into its text-relevant and text-irrelevant
//! parts (LongAlign), with the reweighting factor on a slider that re-runs one GPU kernel.

use yew::prelude::*;

use super::score::ReweightSlider;
use super::{fmt, use_ctx};
use crate::app::Ctx;
use crate::charts::{Point, Scatter};
use crate::store::Scored;

/// The gallery's prompts in order (the columns of the split).
pub fn prompt_texts(s: &Scored) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &s.rows {
        if out.last() != Some(&r.prompt) {
            out.push(r.prompt.clone());
        }
    }
    out
}

#[function_component(DecomposeView)]
pub fn decompose_view() -> Html {
    let Some(Ctx { state, .. }) = use_ctx() else { return html! {} };
    let Some(s) = state.scored.clone() else {
        return html! { <section class="ps-view"><ReweightSlider /><p class="ps-muted">{ "Scoring the demo gallery…" }</p></section> };
    };
    let prompts = prompt_texts(&s);
    let cols = prompts.len().max(1);
    // Which prompt each image was made for.
    let own: Vec<usize> = {
        let mut p = 0;
        s.rows
            .iter()
            .enumerate()
            .map(|(k, r)| {
                if k > 0 && s.rows[k - 1].prompt != r.prompt {
                    p += 1;
                }
                p
            })
            .collect()
    };
    let points: Vec<Point> = (0..s.relevant.len())
        .map(|k| {
            let (image, prompt) = (k / cols, k % cols);
            Point {
                x: s.irrelevant[k] as f64,
                y: s.relevant[k] as f64,
                label: format!("{} × “{}”", s.rows.get(image).map_or("", |r| r.id.as_str()), prompts[prompt]),
                kind: if own.get(image) == Some(&prompt) { "own" } else { "other" },
            }
        })
        .collect();
    let weighted = match &state.reweighted {
        Some(r) if r.0 == state.reweight => Some(r.1.clone()),
        _ => None,
    };
    let device = if s.resident.is_some() { "on the GPU" } else { "on the CPU" };
    let winners = prompts.iter().enumerate().map(|(p, prompt)| {
        let ks: Vec<usize> = (0..s.rows.len()).filter(|&k| own[k] == p).collect();
        let best = |f: &dyn Fn(usize) -> f32| ks.iter().copied().max_by(|&a, &b| f(a).total_cmp(&f(b)));
        let by_score = best(&|k| s.relevant[k * cols + p] + s.irrelevant[k * cols + p]);
        let by_weight = weighted.as_ref().and_then(|w| best(&|k| w[k * cols + p]));
        let name = |k: Option<usize>| k.and_then(|k| s.rows.get(k)).map_or("—".to_string(), |r| r.id.clone());
        html! {
            <tr data-testid="reweighted-winner" data-prompt={prompt.clone()}>
                <td>{ prompt.clone() }</td><td>{ name(by_score) }</td><td>{ name(by_weight) }</td>
            </tr>
        }
    });
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    html! {
        <section class="ps-view">
            <div class="ps-controls"><ReweightSlider /></div>
            <p class="ps-muted">
                { format!("{} images × {} prompts. Common direction: the mean of 64 shapes-world prompts (the gallery's reference set). Reweighted {device}.",
                    s.embedded.images.len(), cols) }
            </p>
            <div class="ps-grid">
                <Scatter title="relevant vs irrelevant part of every image × prompt score" xlabel="irrelevant" ylabel="relevant" points={points} />
                <div>
                    <table class="ps-table">
                        <caption>{ format!("Best image per prompt, by score and by relevant + {:.2}·irrelevant", state.reweight) }</caption>
                        <thead><tr><th scope="col">{ "prompt" }</th><th scope="col">{ "by score" }</th><th scope="col">{ "reweighted" }</th></tr></thead>
                        <tbody>{ for winners }</tbody>
                    </table>
                    <p class="ps-muted">{ format!("mean relevant {} · mean irrelevant {}", fmt(mean(&s.relevant)), fmt(mean(&s.irrelevant))) }</p>
                </div>
            </div>
        </section>
    }
}
