//! DPO: implicit rewards, margins, losses and accuracies of exported log-probabilities for any
//! combination of loss types, with β and ε live; histograms, the chosen-vs-rejected scatter,
//! a sortable and filterable pair table and the per-token reward heatmap of a selected pair.

use std::rc::Rc;

use prefscope_core::io::read::Preferences;
use prefscope_core::io::record::TokenColumn;
use prefscope_core::preference::dpo::Objective;
use prefscope_core::preference::ranking::flip_threshold;
use prefscope_core::preference::report::report;
use prefscope_core::preference::tokens::{pair_token_rewards, DifferingReward};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::fmt;
use crate::charts::{Histogram, Point, Scatter, Series};
use crate::store::{Action, Dpo, DpoResult, Request};
use crate::tasks::{dpo_request, BUNDLED_EARLY, BUNDLED_FINAL};

/// Metrics the comparison of two files shows.
const COMPARED: [&str; 5] =
    ["rewards/accuracies", "rewards/margins", "loss", "ranking/accuracy", "ranking/idealized_accuracy"];

/// Rows the pair table renders at once (the rest is reached by sorting and filtering).
const TABLE_ROWS: usize = 200;

/// β on a log slider: 10^-3 … 10^1.
fn beta_to_slider(beta: f64) -> f64 {
    beta.log10()
}

#[derive(Clone, Copy, PartialEq)]
enum SortKey {
    Index,
    Chosen,
    Rejected,
    Margin,
    Loss,
}

/// File picker for DPO data; the file is read and parsed in the page.
#[derive(Properties, PartialEq)]
struct DpoFileProps {
    dispatch: Callback<Action>,
}

#[function_component(DpoFile)]
fn dpo_file(props: &DpoFileProps) -> Html {
    let dispatch = props.dispatch.clone();
    let onchange = Callback::from(move |e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        dispatch.emit(Action::Request(Request::DpoFile(file)));
    });
    html! {
        <label class="ps-control">{ "Load log-probabilities (JSONL, CSV, Parquet) " }
            <input type="file" accept=".jsonl,.ndjson,.json,.csv,.parquet,.pq" {onchange} data-testid="dpo-file" />
        </label>
    }
}

/// Share of pair `i`'s absolute per-token reward on the tokens where its two sides differ.
fn differing_share(t: &prefscope_core::DpoTable, i: usize, beta: f64) -> Option<f64> {
    let (c, r) = (&t.chosen_tokens, &t.rejected_tokens);
    let (ct, rt) = (c.tokens.get(i)?, r.tokens.get(i)?);
    DifferingReward::of(ct, rt, &pair_token_rewards(c, i, beta), &pair_token_rewards(r, i, beta)).share()
}

/// The bundled DPO demo run at its end or at its early checkpoint, to compare two points of
/// training.
#[derive(Properties, PartialEq)]
struct BundledRunProps {
    /// The loaded file's name.
    current: Option<String>,
    dispatch: Callback<Action>,
}

#[function_component(BundledRun)]
fn bundled_run(props: &BundledRunProps) -> Html {
    let dispatch = props.dispatch.clone();
    let current = props.current.clone().unwrap_or_default();
    let onchange = Callback::from(move |e: Event| {
        let early = e.target_unchecked_into::<web_sys::HtmlSelectElement>().value() == BUNDLED_EARLY;
        dispatch.emit(Action::Request(Request::BundledDpo { early }));
    });
    let option = |file: &str, label: &str| {
        html! { <option value={file.to_string()} selected={current == file}>{ label.to_string() }</option> }
    };
    html! {
        <label class="ps-control">{ "Bundled DPO run " }
            <select {onchange} data-testid="dpo-checkpoint">
                { (current != BUNDLED_FINAL && current != BUNDLED_EARLY).then(|| html! { <option value="" selected=true disabled=true>{ "choose" }</option> }) }
                { option(BUNDLED_FINAL, "end of training") }
                { option(BUNDLED_EARLY, "early checkpoint") }
            </select>
        </label>
    }
}

fn token_strip(label: &str, column: &TokenColumn, i: usize, beta: f64) -> Html {
    let rewards = pair_token_rewards(column, i, beta);
    if rewards.is_empty() {
        return html! {};
    }
    let peak = rewards.iter().fold(0f64, |m, r| m.max(r.abs())).max(1e-12);
    let tokens = column.tokens.get(i).cloned().unwrap_or_default();
    html! {
        <div class="ps-heat">
            <span class="ps-heat-label">{ label.to_string() }</span>
            { for rewards.iter().enumerate().map(|(t, &r)| {
                // Okabe–Ito green and vermillion at most 60% opaque: the text keeps a contrast of 4.5
                // or more on every shade, in the light and the dark scheme.
                let a = 0.6 * (r.abs() / peak).min(1.0);
                let colour = if r >= 0.0 { format!("rgba(0,158,115,{a:.3})") } else { format!("rgba(213,94,0,{a:.3})") };
                let text = tokens.get(t).cloned().unwrap_or_else(|| format!("#{t}"));
                html! { <span class="ps-token" style={format!("background:{colour}")} title={format!("β(logπ − logπref) = {}", fmt(r))}
                              data-testid="token" data-reward={r.to_string()}>{ text }</span> }
            }) }
        </div>
    }
}

/// What the DPO view shows and changes.
#[derive(Properties, PartialEq)]
pub struct DpoProps {
    pub dpo: Dpo,
    pub dispatch: Callback<Action>,
}

#[function_component(DpoView)]
pub fn dpo_view(props: &DpoProps) -> Html {
    let sort = use_state(|| (SortKey::Index, false));
    let filter = use_state(String::new);
    let wrong_only = use_state(|| false);
    let DpoProps { dpo, dispatch } = props;
    // The other checkpoint beside this one, same settings, on the CPU (it is small); computed
    // when the settings or the file change, not on every render.
    let compared = {
        let other = dpo.compare.clone();
        let request = dpo_request(dpo);
        let key = (dpo.key(), other.as_ref().map(|(name, data)| (name.clone(), Rc::as_ptr(data) as usize)));
        use_memo(key, move |_| {
            let (name, other) = other?;
            let result = report(&other, &request).ok()?;
            Some((name, result.evaluation.metrics, result.evaluation.pairs.margin))
        })
    };

    let losses = {
        let selected = dpo.losses.clone();
        let dispatch = dispatch.clone();
        Objective::names().into_iter().map(move |name| {
            let on = selected.iter().any(|l| l == name);
            let dispatch = dispatch.clone();
            let selected = selected.clone();
            let onchange = Callback::from(move |_| {
                let mut next: Vec<String> = selected.iter().filter(|l| *l != name).cloned().collect();
                if !on {
                    next.push(name.to_string());
                }
                if !next.is_empty() {
                    dispatch.emit(Action::DpoLosses(next));
                }
            });
            html! { <label class="ps-check"><input type="checkbox" checked={on} {onchange} data-loss={name} />{ name }</label> }
        })
    };
    let on_beta = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: InputEvent| {
            if let Ok(x) = e.target_unchecked_into::<HtmlInputElement>().value().parse::<f64>() {
                // Three significant digits, so the slider lands on readable values.
                let beta = 10f64.powf(x);
                let beta = format!("{beta:.2e}").parse().unwrap_or(beta);
                dispatch.emit(Action::DpoBeta(beta));
            }
        })
    };
    let on_eps = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: InputEvent| {
            if let Ok(x) = e.target_unchecked_into::<HtmlInputElement>().value().parse::<f64>() {
                dispatch.emit(Action::DpoLabelSmoothing(x));
            }
        })
    };
    let controls = html! {
        <div class="ps-controls">
            <DpoFile dispatch={dispatch.clone()} />
            <BundledRun current={dpo.source.clone()} dispatch={dispatch.clone()} />
            <fieldset class="ps-losses"><legend>{ "Loss types (several are summed)" }</legend>{ for losses }</fieldset>
            <label class="ps-control">{ "β " }
                <input type="range" min="-3" max="1" step="0.01" value={beta_to_slider(dpo.beta).to_string()} oninput={on_beta}
                       data-testid="beta" aria-valuetext={fmt(dpo.beta)} />
                <output data-testid="beta-value" data-value={dpo.beta.to_string()}>{ fmt(dpo.beta) }</output>
            </label>
            <label class="ps-control">{ "label smoothing ε " }
                <input type="range" min="0" max="0.49" step="0.01" value={dpo.label_smoothing.to_string()} oninput={on_eps}
                       data-testid="epsilon" aria-valuetext={fmt(dpo.label_smoothing)} />
                <output>{ fmt(dpo.label_smoothing) }</output>
            </label>
        </div>
    };
    if let Some((source, lists)) = &dpo.ranked {
        // The pairwise settings do not apply to ranked lists: only the file picker and the run.
        let controls = html! {
            <div class="ps-controls">
                <DpoFile dispatch={dispatch.clone()} />
                <BundledRun current={dpo.source.clone()} dispatch={dispatch.clone()} />
            </div>
        };
        return ranked_panel(controls, source, lists, &dpo.ranked_objective, dpo.ranked_result.as_deref(), dispatch);
    }
    let source = dpo.source.clone().unwrap_or_default();
    let (Some(data), Some(result)) = (dpo.data.clone(), dpo.result.clone()) else {
        let what = if dpo.data.is_some() { "computing…" } else { "loading the bundled DPO export…" };
        return html! { <section class="ps-view">{ controls }<p class="ps-muted">{ what }</p></section> };
    };
    let table = match &*data {
        Preferences::Dpo(t) => Some(t),
        Preferences::Diffusion(_) => None,
    };
    let metrics = result.metrics.iter().map(|(name, value)| {
        html! { <tr data-testid="metric" data-name={name.clone()} data-value={value.to_string()}><th scope="row">{ name.clone() }</th><td>{ fmt(*value) }</td></tr> }
    });
    let r: &DpoResult = &result;
    let n = r.ids.len();
    let points: Vec<Point> = (0..n)
        .map(|i| Point {
            x: r.rejected_reward[i],
            y: r.chosen_reward[i],
            label: r.ids[i].clone(),
            kind: if r.margin[i] > 0.0 { "right" } else { "wrong" },
        })
        .collect();
    let mut diagonals = vec![0.0];
    if let (Some(i), Some(t)) = (dpo.selected, table) {
        if i < t.len() {
            diagonals.push(flip_threshold(t.reference_chosen_logps[i], t.reference_rejected_logps[i], dpo.beta));
        }
    }
    let onselect = {
        let dispatch = dispatch.clone();
        Callback::from(move |i: usize| dispatch.emit(Action::DpoSelect(Some(i))))
    };
    // The pair table: filter, sort, first rows.
    let needle = filter.to_lowercase();
    let mut rows: Vec<usize> = (0..n)
        .filter(|&i| !*wrong_only || r.margin[i] <= 0.0)
        .filter(|&i| {
            needle.is_empty()
                || r.ids[i].to_lowercase().contains(&needle)
                || table.and_then(|t| t.prompt.get(i)).is_some_and(|p| p.to_lowercase().contains(&needle))
        })
        .collect();
    let (key, descending) = *sort;
    let value = |i: usize| match key {
        SortKey::Index => i as f64,
        SortKey::Chosen => r.chosen_reward[i],
        SortKey::Rejected => r.rejected_reward[i],
        SortKey::Margin => r.margin[i],
        SortKey::Loss => r.loss[i],
    };
    rows.sort_by(|&a, &b| value(a).total_cmp(&value(b)));
    if descending {
        rows.reverse();
    }
    let shown = rows.len().min(TABLE_ROWS);
    let header = |label: &'static str, k: SortKey| {
        let sort = sort.clone();
        let onclick = Callback::from(move |_| {
            let (current, desc) = *sort;
            sort.set((k, if current == k { !desc } else { true }));
        });
        let mark = if key == k {
            if descending {
                " ▼"
            } else {
                " ▲"
            }
        } else {
            ""
        };
        let aria = if key == k {
            if descending {
                "descending"
            } else {
                "ascending"
            }
        } else {
            "none"
        };
        html! { <th scope="col" aria-sort={aria}><button type="button" class="ps-sort" {onclick}>{ label }{ mark }</button></th> }
    };
    let on_filter = {
        let filter = filter.clone();
        Callback::from(move |e: InputEvent| filter.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let on_wrong = {
        let wrong_only = wrong_only.clone();
        Callback::from(move |_| wrong_only.set(!*wrong_only))
    };
    let heatmap = match (dpo.selected, table) {
        (Some(i), Some(t)) if i < t.len() => {
            let text = |c: &prefscope_core::io::record::OptColumn<String>| c.get(i).cloned().unwrap_or_default();
            html! {
                <div class="ps-heatmap" data-testid="heatmap">
                    <h2>{ format!("pair {} — per-token implicit reward β(logπ − logπref)", t.id[i]) }</h2>
                    { differing_share(t, i, dpo.beta).map(|share| html! {
                        <p class="ps-muted" data-testid="differing-share" data-value={share.to_string()}>
                            { format!("{:.0}% of the pair's |reward| sits on the tokens where chosen and rejected differ", share * 100.0) }
                        </p>
                    }) }
                    { if t.chosen_tokens.present(i) {
                        html! { <>{ token_strip("chosen", &t.chosen_tokens, i, dpo.beta) }{ token_strip("rejected", &t.rejected_tokens, i, dpo.beta) }</> }
                    } else {
                        html! { <p class="ps-muted">{ format!("chosen: {} · rejected: {} (no per-token arrays in this file)", text(&t.chosen), text(&t.rejected)) }</p> }
                    } }
                </div>
            }
        }
        _ => {
            html! { <p class="ps-muted">{ "Select a pair (table row or scatter point) to see its per-token rewards." }</p> }
        }
    };
    let comparison = (*compared).as_ref().map(|(name, other, _)| {
        let rows = COMPARED.iter().filter_map(|k| {
            let (a, b) = (r.metrics.get(*k)?, other.get(*k)?);
            Some(html! {
                <tr><th scope="row">{ k.to_string() }</th><td>{ fmt(*a) }</td>
                    <td data-testid="compare-metric" data-name={k.to_string()} data-value={b.to_string()}>{ fmt(*b) }</td></tr>
            })
        });
        html! {
            <table class="ps-table ps-metrics" data-testid="compare">
                <caption>{ "Two points of training, same settings" }</caption>
                <thead><tr><th scope="col">{ "metric" }</th><th scope="col">{ source.clone() }</th><th scope="col">{ name.clone() }</th></tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
        }
    });
    let mut margins = vec![Series::new(source.clone(), "neutral", r.margin.clone())];
    if let Some((name, _, margin)) = (*compared).as_ref() {
        margins.push(Series::new(name.clone(), "compared", margin.clone()));
    }
    // The pair selected in any chart or the table is marked in every chart.
    let selected_margin = dpo.selected.and_then(|i| r.margin.get(i).copied());
    let diagnostics = table.map(|t| displacement_charts(t, r, dpo.selected, &onselect)).unwrap_or_default();
    let ranking: Vec<Html> = ["ranking/accuracy", "ranking/idealized_accuracy"]
        .iter()
        .filter_map(|k| r.metrics.get(*k).map(|v| html! { <li>{ format!("{k}: {}", fmt(*v)) }</li> }))
        .collect();
    html! {
        <section class="ps-view">
            { controls }
            <p class="ps-muted" data-testid="dpo-source" data-pairs={n.to_string()}
               data-wasm-memory={crate::tasks::wasm_memory_bytes().to_string()}>
                { format!("{source}: {n} pairs, loss {} , β = {}", dpo.losses.join(" + "), fmt(dpo.beta)) }
            </p>
            <div class="ps-grid">
                <table class="ps-table ps-metrics"><caption>{ "Metrics (TRL names)" }</caption><tbody>{ for metrics }</tbody></table>
                <div>
                    <Histogram title="margins (chosen − rejected reward)" xlabel="margin" counted="pairs" series={margins} marker={Some(0.0)} selected={selected_margin} />
                    <Histogram title="implicit rewards" xlabel="implicit reward" counted="pairs"
                               series={vec![Series::new("chosen", "chosen", r.chosen_reward.clone()), Series::new("rejected", "rejected", r.rejected_reward.clone())]} />
                </div>
                <div>
                    <Scatter title="chosen vs rejected reward (diagonal: equal rewards; second line: the selected pair's ranking flip threshold)" legend={vec![("right", "margin > 0"), ("wrong", "margin ≤ 0")]}
                             xlabel="rejected reward" ylabel="chosen reward" points={points} diagonals={diagonals}
                             onselect={Some(onselect)} selected={dpo.selected} />
                    { (!ranking.is_empty()).then(|| html! { <ul class="ps-muted" aria-label="ranking accuracy">{ for ranking }</ul> }) }
                </div>
            </div>
            { diagnostics }
            { comparison }
            { heatmap }
            <div class="ps-controls">
                <label class="ps-control">{ "Filter by id or prompt " }<input type="search" value={(*filter).clone()} oninput={on_filter} data-testid="pair-filter" /></label>
                <label class="ps-check"><input type="checkbox" checked={*wrong_only} onchange={on_wrong} />{ "only pairs with margin ≤ 0" }</label>
                <span class="ps-muted">{ format!("{} of {} pairs{}", shown, rows.len(), if rows.len() > shown { " (sort or filter to see others)" } else { "" }) }</span>
            </div>
            <table class="ps-table ps-pairs">
                <thead><tr>{ header("#", SortKey::Index) }<th scope="col">{ "id" }</th>{ header("chosen reward", SortKey::Chosen) }
                    { header("rejected reward", SortKey::Rejected) }{ header("margin", SortKey::Margin) }{ header("loss", SortKey::Loss) }</tr></thead>
                <tbody>
                { for rows.iter().take(shown).map(|&i| {
                    let (dispatch, keys) = (dispatch.clone(), dispatch.clone());
                    let onkeydown = Callback::from(move |e: KeyboardEvent| {
                        if e.key() == "Enter" || e.key() == " " {
                            e.prevent_default();
                            keys.emit(Action::DpoSelect(Some(i)));
                        }
                    });
                    let selected = dpo.selected == Some(i);
                    html! {
                        <tr data-testid="pair-row" data-id={r.ids[i].clone()} class={classes!(selected.then_some("ps-selected"), (r.margin[i] <= 0.0).then_some("ps-wrong"))}
                            tabindex="0" aria-selected={selected.to_string()} {onkeydown}
                            onclick={Callback::from(move |_| dispatch.emit(Action::DpoSelect(Some(i))))}>
                            <td>{ i }</td><td>{ r.ids[i].clone() }</td><td>{ fmt(r.chosen_reward[i]) }</td><td>{ fmt(r.rejected_reward[i]) }</td>
                            <td>{ fmt(r.margin[i]) }</td><td>{ fmt(r.loss[i]) }</td>
                        </tr>
                    }
                }) }
                </tbody>
            </table>
        </section>
    }
}

/// What DPO did to the likelihoods (the `diagnostics/*` metrics, drawn): each pair's chosen
/// against rejected log-ratio, log πθ − log π_ref, in quadrants (below zero on both axes: both
/// completions lost likelihood, Razin et al.'s displacement), and, when lengths are known, the
/// margin against the length difference (a length bias slopes).
fn displacement_charts(
    t: &prefscope_core::DpoTable,
    r: &DpoResult,
    selected: Option<usize>,
    onselect: &Callback<usize>,
) -> Html {
    let n = t.len().min(r.margin.len());
    let ratios: Vec<Point> = (0..n)
        .map(|i| {
            let chosen = t.policy_chosen_logps[i] - t.reference_chosen_logps[i];
            Point {
                x: t.policy_rejected_logps[i] - t.reference_rejected_logps[i],
                y: chosen,
                label: r.ids[i].clone(),
                kind: if chosen < 0.0 { "wrong" } else { "right" },
            }
        })
        .collect();
    let lengths = prefscope_core::preference::report::table_lengths(t).map(|(cl, rl)| {
        let points: Vec<Point> = (0..n)
            .map(|i| Point {
                x: cl[i] - rl[i],
                y: r.margin[i],
                label: r.ids[i].clone(),
                kind: if r.margin[i] > 0.0 { "right" } else { "wrong" },
            })
            .collect();
        html! {
            <div data-testid="length-chart">
                <Scatter title="margin against chosen − rejected length (a slope is a length bias)" legend={vec![("right", "margin > 0"), ("wrong", "margin ≤ 0")]}
                         xlabel="length difference (tokens)" ylabel="margin" points={points} zero_lines=true
                         {selected} onselect={Some(onselect.clone())} />
            </div>
        }
    });
    html! {
        <div class="ps-grid">
            <div data-testid="displacement-chart">
                <Scatter title="log-ratios log πθ − log πref: chosen against rejected" legend={vec![("right", "chosen gained likelihood"), ("wrong", "chosen lost likelihood")]}
                         xlabel="rejected log-ratio" ylabel="chosen log-ratio" points={ratios} zero_lines=true
                         {selected} onselect={Some(onselect.clone())} />
            </div>
            { lengths }
        </div>
    }
}

/// Ranked lists (PRO for language models, SmPO or RankDPO for images): the objective's metrics
/// and each list's loss, computed here on the CPU with the command's defaults (β 5000, SFT
/// weight 0.05).
fn ranked_panel(
    controls: Html,
    source: &str,
    lists: &[prefscope_core::preference::dpo::ranked::RankedList],
    objective: &str,
    result: Option<&Result<prefscope_core::preference::dpo::Evaluation, String>>,
    dispatch: &Callback<Action>,
) -> Html {
    use prefscope_core::preference::dpo::ranked::RANKED_OBJECTIVES;
    let onchange = {
        let dispatch = dispatch.clone();
        Callback::from(move |e: Event| {
            dispatch.emit(Action::DpoRankedObjective(e.target_unchecked_into::<web_sys::HtmlSelectElement>().value()))
        })
    };
    let options =
        RANKED_OBJECTIVES.iter().map(|o| html! { <option value={*o} selected={*o == objective}>{ *o }</option> });
    let body = match result {
        None => html! {},
        Some(Ok(e)) => {
            let metrics = e.metrics.iter().map(|(name, value)| {
                html! { <tr data-testid="metric" data-name={name.clone()} data-value={value.to_string()}><th scope="row">{ name.clone() }</th><td>{ fmt(*value) }</td></tr> }
            });
            let rows = lists.iter().zip(&e.pairs.loss).map(|(l, loss)| {
                html! { <tr data-testid="list-row"><td>{ l.id.clone() }</td><td>{ l.rewards.len() }</td><td>{ fmt(*loss) }</td></tr> }
            });
            html! {
                <div class="ps-grid">
                    <table class="ps-table ps-metrics"><caption>{ format!("{objective} over {} ranked lists", lists.len()) }</caption><tbody>{ for metrics }</tbody></table>
                    <Histogram title="loss per list" xlabel="loss" counted="lists" series={vec![Series::new(objective.to_string(), "neutral", e.pairs.loss.clone())]} />
                    <table class="ps-table"><thead><tr><th>{ "id" }</th><th>{ "candidates" }</th><th>{ "loss" }</th></tr></thead><tbody>{ for rows }</tbody></table>
                </div>
            }
        }
        Some(Err(e)) => html! { <p class="ps-error" role="alert">{ format!("{source}: {e}") }</p> },
    };
    html! {
        <section class="ps-view">
            { controls }
            <p class="ps-muted" data-testid="dpo-source">{ format!("{source}: {} ranked lists", lists.len()) }</p>
            <label class="ps-control">{ "objective " }<select {onchange} data-testid="ranked-objective">{ for options }</select></label>
            <p class="ps-muted">{ "β 5000 for smpo and rankdpo, SFT weight 0.05 for pro: the command's defaults (prefscope dpo --beta, --sft-weight change them)." }</p>
            { body }
        </section>
    }
}
