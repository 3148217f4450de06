//! Decompose: every image × prompt score split into its text-relevant and text-irrelevant
//! parts (LongAlign), with the reweighting factor on a slider that re-runs one GPU kernel.

use std::collections::BTreeSet;
use std::rc::Rc;

use yew::prelude::*;

use super::fmt;
use super::score::{reweighted, ReweightSlider};
use crate::charts::{Point, Scatter};
use crate::store::{Action, Scored, Source};

/// What the Decompose view shows and changes.
#[derive(Properties, PartialEq)]
pub struct DecomposeProps {
    pub scored: Option<Rc<Scored>>,
    pub source: Source,
    pub bundled_reference: bool,
    pub reweight: f32,
    /// The GPU's reweighted matrix and the weight it is for.
    pub reweighted: Option<Rc<(f32, Vec<f32>)>>,
    pub dispatch: Callback<Action>,
}

#[function_component(DecomposeView)]
pub fn decompose_view(props: &DecomposeProps) -> Html {
    let DecomposeProps { scored, source, bundled_reference, reweight, reweighted: matrix, dispatch } = props;
    let slider = html! { <ReweightSlider reweight={*reweight} dispatch={dispatch.clone()} /> };
    let reference = (*source == Source::User).then(|| {
        let bundled = *bundled_reference;
        let dispatch = dispatch.clone();
        let onchange = Callback::from(move |_| dispatch.emit(Action::BundledReference(!bundled)));
        html! {
            <label class="ps-check"><input type="checkbox" checked={!bundled} {onchange} data-testid="own-reference" />
                { "common direction from your prompts (else the bundled reference set)" }</label>
        }
    });
    let Some(s) = scored.clone() else {
        return html! { <section class="ps-view"><div class="ps-controls">{ slider }{ reference }</div><p class="ps-muted">{ "Scoring…" }</p></section> };
    };
    let cols = s.prompts.len().max(1);
    // The image × prompt pairs the rows score (the rest of the matrix is shown for contrast).
    let scored_cells: BTreeSet<usize> = s.rows.iter().map(|r| s.cell(r)).collect();
    let points: Vec<Point> = (0..s.split.relevant.len())
        .map(|k| {
            let (image, prompt) = (k / cols, k % cols);
            Point {
                x: s.split.irrelevant[k] as f64,
                y: s.split.relevant[k] as f64,
                label: format!("{} × “{}”", s.image_names.get(image).map_or("", String::as_str), s.prompts[prompt]),
                kind: if scored_cells.contains(&k) { "own" } else { "other" },
            }
        })
        .collect();
    let device = if s.split.on_gpu() { "on the GPU" } else { "on the CPU" };
    let winners = s.prompts.iter().enumerate().map(|(p, prompt)| {
        let rows: Vec<_> = s.rows.iter().filter(|r| r.text == p).collect();
        let by_score = rows.iter().max_by(|a, b| a.score.total_cmp(&b.score));
        let by_weight = rows.iter().max_by(|a, b| {
            reweighted(*reweight, matrix.as_deref(), &s, a).total_cmp(&reweighted(*reweight, matrix.as_deref(), &s, b))
        });
        let name = |r: Option<&&crate::store::Row>| r.map_or("—".to_string(), |r| r.id.clone());
        html! {
            <tr data-testid="reweighted-winner" data-prompt={prompt.clone()}>
                <td>{ prompt.clone() }</td><td>{ name(by_score) }</td><td>{ name(by_weight) }</td>
            </tr>
        }
    });
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    html! {
        <section class="ps-view">
            <div class="ps-controls">{ slider }{ reference }</div>
            <p class="ps-muted" data-testid="reference">
                { format!("{} images × {cols} prompts. Common direction: the mean of {}. Reweighted {device}.", s.image_names.len(), s.reference) }
            </p>
            <div class="ps-grid">
                <Scatter title="relevant vs irrelevant part of every image × prompt score" legend={vec![("own", "the pairs the rows score"), ("other", "other image × prompt pairs")]}
                         xlabel="irrelevant" ylabel="relevant" points={points} />
                <div>
                    <table class="ps-table">
                        <caption>{ format!("Best image per prompt, by score and by relevant + {:.2}·irrelevant", reweight) }</caption>
                        <thead><tr><th scope="col">{ "prompt" }</th><th scope="col">{ "by score" }</th><th scope="col">{ "reweighted" }</th></tr></thead>
                        <tbody>{ for winners }</tbody>
                    </table>
                    <p class="ps-muted">{ format!("mean relevant {} · mean irrelevant {}", fmt(mean(&s.split.relevant)), fmt(mean(&s.split.irrelevant))) }</p>
                </div>
            </div>
        </section>
    }
}
