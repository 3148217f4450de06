//! Pairs: Pick-a-Pic style labelled pairs scored by the model — agreement with the labels,
//! PickScore's accuracy with ties at an adjustable threshold, and the pairs the model gets
//! wrong, side by side.

use std::rc::Rc;

use prefscope_clip::pairs::{pair_metrics, predicted};
use prefscope_core::clip_score::pick_pair_accuracy;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::fmt;
use crate::store::{Action, Pairs, Request};

fn side(label: &str, p: f32, preferred: bool, thumb: Option<String>) -> Html {
    html! {
        <figure class={classes!("ps-side", preferred.then_some("ps-preferred"))}>
            { thumb.map(|src| html! { <img src={src} alt={format!("image {label}")} width="96" height="96" /> }) }
            <figcaption>{ format!("{label}: p = {p:.3}{}", if preferred { " · labelled better" } else { "" }) }</figcaption>
        </figure>
    }
}

/// A label or a prediction in words.
fn choice(x: f32) -> &'static str {
    if x == 0.5 {
        "a tie"
    } else if x == 1.0 {
        "image 0"
    } else {
        "image 1"
    }
}

/// What the Pairs view shows and changes.
#[derive(Properties, PartialEq)]
pub struct PairsProps {
    pub tie_threshold: f32,
    pub pairs: Option<Rc<Pairs>>,
    pub dispatch: Callback<Action>,
}

#[function_component(PairsView)]
pub fn pairs_view(props: &PairsProps) -> Html {
    let PairsProps { tie_threshold, pairs, dispatch } = props;
    let onchange = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
            input.set_value("");
            dispatch.emit(Action::Request(Request::PairsFile(file)));
        })
    };
    let on_threshold = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: InputEvent| {
            if let Ok(t) = e.target_unchecked_into::<HtmlInputElement>().value().parse::<f32>() {
                dispatch.emit(Action::TieThreshold(t));
            }
        })
    };
    let t = *tie_threshold;
    let controls = html! {
        <div class="ps-controls">
            <label class="ps-control">{ "Labelled pairs (JSONL or Parquet: caption, jpg_0, jpg_1, label_0) " }
                <input type="file" accept=".jsonl,.ndjson,.json,.parquet,.pq" {onchange} data-testid="pairs-file" /></label>
            <label class="ps-control">{ "Tie threshold on |p1 − p0| " }
                <input type="range" min="0" max="0.5" step="0.01" value={t.to_string()} oninput={on_threshold} data-testid="tie-threshold" />
                <output>{ format!("{t:.2}") }</output></label>
        </div>
    };
    let Some(pairs) = pairs.clone() else {
        return html! { <section class="ps-view">{ controls }
            <p class="ps-muted">{ "Load labelled pairs. Images are inline bytes (Parquet, as Pick-a-Pic ships them), URLs, or names of images loaded in the Score view." }</p>
        </section> };
    };
    let metrics = pair_metrics(&pairs.pairs, t);
    let rows = metrics.iter().map(|(name, value)| {
        html! { <tr data-testid="metric" data-name={name.clone()} data-value={value.to_string()}><th scope="row">{ name.clone() }</th><td>{ fmt(*value) }</td></tr> }
    });
    let wrong: Vec<usize> = (0..pairs.pairs.len())
        .filter(|&i| {
            let p = &pairs.pairs[i];
            pick_pair_accuracy(p.p0, p.p1, p.label_0, t) < 1.0
        })
        .collect();
    let cards = wrong.iter().map(|&i| {
        let p = &pairs.pairs[i];
        let (a, b) = pairs.thumbnails[i].clone();
        let (call, label) = (choice(predicted(p, t)), choice(p.label_0));
        html! {
            <article class="ps-pair" data-testid="disagreement">
                <h4>{ format!("#{i}: {}", p.caption) }</h4>
                <div class="ps-sides">{ side("image 0", p.p0, p.label_0 == 1.0, a) }{ side("image 1", p.p1, p.label_0 == 0.0, b) }</div>
                <p class="ps-muted">{ format!("label: {label} · model: {call}") }</p>
            </article>
        }
    });
    html! {
        <section class="ps-view">
            { controls }
            <p class="ps-muted" data-testid="pairs-source">{ format!("{}: {} pairs", pairs.source, pairs.pairs.len()) }</p>
            <table class="ps-table ps-metrics"><caption>{ "PickScore's evaluation" }</caption><tbody>{ for rows }</tbody></table>
            <h3>{ format!("{} pairs where the model and the label differ", wrong.len()) }</h3>
            <div class="ps-grid">{ for cards }</div>
        </section>
    }
}
