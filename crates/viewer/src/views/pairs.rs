//! Pairs: Pick-a-Pic style labelled pairs scored by the model — agreement with the labels,
//! PickScore's accuracy with ties at an adjustable threshold, and the pairs the model gets
//! wrong, side by side.

use std::rc::Rc;

use prefscope_clip::pairs::{pair_metrics, predicted};
use prefscope_core::scoring::clip_score::pick_pair_accuracy;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::fmt;
use crate::charts::{Histogram, Series};
use crate::store::{Action, Pairs, Request};
use prefscope_core::preference::strength::Band;

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
    let likely_wrong_only = use_state(|| true);
    let on_only = {
        let only = likely_wrong_only.clone();
        Callback::from(move |e: Event| only.set(e.target_unchecked_into::<HtmlInputElement>().checked()))
    };
    let t = *tie_threshold;
    let controls = html! {
        <div class="ps-controls">
            <label class="ps-control">{ "Labelled pairs (JSONL or Parquet: caption, jpg_0, jpg_1, label_0), reward-ensemble rows (id, chosen_rewards, rejected_rewards), or annotated pairs (user_id, features_0, features_1, label_0) " }
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
    // Annotated pairs: the annotator groups.
    if let Some(shown) = &pairs.groups {
        let fit = &shown.fit;
        return html! {
            <section class="ps-view">
                { controls }
                <p class="ps-muted" data-testid="pairs-source">{ format!("{}: {} users (annotated pairs)", pairs.source, fit.users.len()) }</p>
                { groups_section(shown) }
            </section>
        };
    }
    // Reward-ensemble rows: strength only (no images, no model probabilities).
    if pairs.thumbnails.is_empty() && !pairs.strength.is_empty() {
        return html! {
            <section class="ps-view">
                { controls }
                <p class="ps-muted" data-testid="pairs-source">{ format!("{}: {} pairs (reward-ensemble rows)", pairs.source, pairs.strength.len()) }</p>
                { strength_section(&pairs, *likely_wrong_only, on_only) }
            </section>
        };
    }
    let metrics = pair_metrics(&pairs.pairs, t);
    let rows = metrics.iter().map(|(name, value)| {
        html! { <tr data-testid="metric" data-name={name.clone()} data-value={value.to_string()}><th scope="row">{ name.clone() }</th><td>{ if name == "pairs" { format!("{value}") } else { fmt(*value) } }</td></tr> }
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
                <h3>{ format!("#{i}: {}", p.caption) }</h3>
                <div class="ps-sides">{ side("image 0", p.p0, p.label_0 == 1.0, a) }{ side("image 1", p.p1, p.label_0 == 0.0, b) }</div>
                <p class="ps-muted">{ format!("label: {label} · model: {call}") }</p>
            </article>
        }
    });
    let strength = strength_section(&pairs, *likely_wrong_only, on_only);
    html! {
        <section class="ps-view">
            { controls }
            <p class="ps-muted" data-testid="pairs-source">{ format!("{}: {} pairs", pairs.source, pairs.pairs.len()) }</p>
            <table class="ps-table ps-metrics"><caption>{ "PickScore's evaluation" }</caption><tbody>{ for rows }</tbody></table>
            { strength }
            <h2>{ format!("{} pairs where the model and the label differ", wrong.len()) }</h2>
            <div class="ps-grid">{ for cards }</div>
        </section>
    }
}

/// Annotator groups: how many, who is in each, how well each group's reward predicts its
/// users' held-out pairs against one reward for everyone, and the cycles a GPM head finds.
fn groups_section(shown: &crate::store::AnnotatorGroups) -> Html {
    let (fit, gpm) = (&shown.fit, shown.gpm.as_ref());
    let metric = |name: &str, value: f64| {
        let shown = if name == "k" { format!("{value}") } else { fmt(value) };
        html! { <tr data-testid="group-metric" data-name={name.to_string()} data-value={value.to_string()}><th scope="row">{ name.to_string() }</th><td>{ shown }</td></tr> }
    };
    let groups = fit.groups.iter().enumerate().map(|(g, s)| {
        let members: Vec<&str> = fit.users.iter().filter(|(_, a)| *a == g).map(|(u, _)| u.as_str()).collect();
        html! {
            <tr data-testid="group-row" data-group={g.to_string()} data-users={s.users.to_string()} data-pairs={s.pairs.to_string()}
                data-accuracy={s.accuracy.to_string()}>
                <td>{ g }</td><td>{ s.users }</td><td>{ s.pairs }</td><td>{ fmt(s.accuracy) }</td>
                <td class="ps-muted">{ members.join(", ") }</td>
            </tr>
        }
    });
    let candidates = (!fit.candidates.is_empty()).then(|| {
        let text = fit.candidates.iter().map(|(k, ll)| format!("K = {k}: {ll:.4}")).collect::<Vec<_>>().join(" · ");
        html! { <p class="ps-muted" data-testid="group-candidates">{ format!("Held-out log-likelihood per pair: {text}") }</p> }
    });
    let gpm = gpm.map(|g| {
        let triads = match g.intransitive_triads {
            Some(t) => format!("{t} cyclic triads (a ≻ b ≻ c ≻ a)"),
            None => "too many items to count cyclic triads here (prefscope groups --gpm counts up to 5000)".into(),
        };
        html! {
            <p class="ps-muted" data-testid="gpm" data-triads={g.intransitive_triads.map(|t| t.to_string())} data-items={g.items.to_string()}>
                { format!("A general preference model head (GPM, 4 dimensions) on the same features: held-out accuracy {}, {triads} among {} items, preferences no single reward can hold.",
                    fmt(g.accuracy), g.items) }
            </p>
        }
    });
    html! {
        <div data-testid="groups">
            <h2>{ format!("{} annotator groups (MaxMin-RLHF's EM over Bradley–Terry rewards)", fit.k) }</h2>
            <p class="ps-muted" data-testid="groups-device" data-device={shown.device.clone()}>
                { format!("Fitted on {}.", if shown.device == "webgpu" { "WebGPU (f32 kernels)".to_string() } else { shown.device.replace("cpu", "the CPU") }) }
            </p>
            <table class="ps-table ps-metrics"><tbody>
                { metric("k", fit.k as f64) }
                { metric("accuracy_single", fit.accuracy_single) }
                { metric("accuracy_groups", fit.accuracy_groups) }
                { metric("log_likelihood", fit.log_likelihood) }
            </tbody></table>
            { candidates }
            <table class="ps-table">
                <thead><tr><th>{ "group" }</th><th>{ "users" }</th><th>{ "pairs" }</th><th>{ "held-out accuracy" }</th><th>{ "users in it" }</th></tr></thead>
                <tbody>{ for groups }</tbody>
            </table>
            { gpm }
        </div>
    }
}

/// Preference strength (Secrets of RLHF II, Eq. 4) of every pair under the ensemble: the
/// histogram of the mean reward difference by band, and the pairs of one band or all.
fn strength_section(pairs: &Pairs, likely_wrong_only: bool, on_only: Callback<Event>) -> Html {
    if pairs.strength.is_empty() {
        return html! {};
    }
    let series: Vec<Series> = Band::ALL
        .iter()
        .map(|b| Series::new(b.name(), b.name(), pairs.strength.iter().filter(|s| s.2 == *b).map(|s| s.0).collect()))
        .collect();
    let shown: Vec<usize> =
        (0..pairs.strength.len()).filter(|&i| !likely_wrong_only || pairs.strength[i].2 == Band::LikelyWrong).collect();
    // For the bundled set, how the band compares with the labels that were flipped.
    let truth = pairs.flipped.as_ref().map(|flipped| {
        let flagged = |i: usize| pairs.strength[i].2 == Band::LikelyWrong;
        let hits = (0..flipped.len()).filter(|&i| flipped[i] && flagged(i)).count();
        let (n_flagged, n_flipped) = ((0..flipped.len()).filter(|&i| flagged(i)).count(), flipped.iter().filter(|f| **f).count());
        html! {
            <p class="ps-muted" data-testid="strength-truth" data-hits={hits.to_string()} data-flagged={n_flagged.to_string()}
               data-flipped={n_flipped.to_string()}>
                { format!("{hits} of the {n_flagged} pairs called likely_wrong have a flipped label; {hits} of the {n_flipped} flipped labels are caught.") }
            </p>
        }
    });
    let rows = shown.iter().map(|&i| {
        let (mean, std, band) = pairs.strength[i];
        let p = &pairs.pairs[i];
        let flipped = pairs.flipped.as_ref().map(|f| if f[i] { "flipped" } else { "" });
        html! {
            <tr data-testid="strength-row" data-band={band.name()} data-mean={mean.to_string()}>
                <td>{ i }</td><td>{ p.caption.clone() }</td><td>{ if pairs.thumbnails.is_empty() { "chosen" } else { choice(p.label_0) } }</td><td>{ fmt(mean) }</td><td>{ fmt(std) }</td>
                <td>{ band.name() }</td>{ for flipped.map(|f| html! { <td>{ f }</td> }) }
            </tr>
        }
    });
    html! {
        <div data-testid="strength">
            <h2>{ "Preference strength (which labels are probably wrong)" }</h2>
            <p class="ps-muted">{ if pairs.thumbnails.is_empty() {
                "Mean and spread of the reward difference (chosen − rejected) over the file's reward models (and the strong-over-weak density ratio when given). Bands by percentile: the lowest 20% likely_wrong, 20–40% ambiguous, the top 10% strongest."
            } else {
                "Mean and spread of the reward difference (labelled − other image) under an ensemble: the model's cosine with CLIP's crop, HPS v2's padding and CLIPScore's \"A photo depicts\" prompt. Bands by percentile: the lowest 20% likely_wrong, 20–40% ambiguous, the top 10% strongest."
            } }</p>
            { truth }
            <Histogram title="strength (mean reward difference) by band" xlabel="mean reward difference" counted="pairs" series={series} marker={Some(0.0)} />
            <label class="ps-check"><input type="checkbox" checked={likely_wrong_only} onchange={on_only} data-testid="only-likely-wrong" />{ "only likely_wrong" }</label>
            <table class="ps-table">
                <thead><tr><th>{ "#" }</th><th>{ "caption" }</th><th>{ "label" }</th><th>{ "mean" }</th><th>{ "std" }</th><th>{ "band" }</th>
                    { for pairs.flipped.as_ref().map(|_| html! { <th>{ "truth" }</th> }) }</tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
        </div>
    }
}
