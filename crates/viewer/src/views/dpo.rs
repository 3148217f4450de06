//! DPO: implicit rewards, margins, losses and accuracies of exported log-probabilities for any
//! combination of loss types, with β and ε live; histograms, the chosen-vs-rejected scatter,
//! the reliability diagram, metrics per subset, a sortable and filterable pair table and the
//! per-token reward heatmap of a selected pair. Several evaluations of one run add the metrics
//! over steps (a click shows a step), the pairs that flipped and the selected pair's trajectory.

use std::rc::Rc;

use prefscope_core::io::read::Preferences;
use prefscope_core::io::record::TokenColumn;
use prefscope_core::preference::dpo::Objective;
use prefscope_core::preference::ranking::flip_threshold;
use prefscope_core::preference::tokens::{pair_token_rewards, DifferingReward};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::{files_of, fmt};
use crate::charts::{Histogram, Line, Lines, Point, Scatter, Series};
use crate::store::{Action, Dpo, DpoResult, DpoRun, Request};
use crate::tasks::{dpo_request, run_summary, RunSummary};

/// Metrics the subset table shows.
const SUBSET_METRICS: [&str; 5] =
    ["rewards/accuracies", "rewards/margins", "loss", "ranking/accuracy", "calibration/ece"];

/// Flips the run panel lists at once.
const FLIP_ROWS: usize = 20;

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

/// File pickers and drop zone for DPO data, read and parsed in the page: one file, or several
/// (or a folder) as the evaluations of one run.
#[derive(Properties, PartialEq)]
struct DpoFileProps {
    dispatch: Callback<Action>,
}

#[function_component(DpoFile)]
fn dpo_file(props: &DpoFileProps) -> Html {
    let dragging = use_state(|| false);
    let on_pick = {
        let dispatch = props.dispatch.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let files = files_of(input.files());
            input.set_value("");
            if !files.is_empty() {
                dispatch.emit(Action::Request(Request::DpoFiles(files)));
            }
        })
    };
    let on_drop = {
        let (dispatch, dragging) = (props.dispatch.clone(), dragging.clone());
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(false);
            let Some(transfer) = e.data_transfer() else { return };
            // Folders are walked (their data files are a run's evaluations); the transfer is
            // read now, while the drop is being handled.
            let dropped = crate::tasks::dropped_files(&transfer);
            let dispatch = dispatch.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match dropped.await {
                    Ok(files) if !files.is_empty() => dispatch.emit(Action::Request(Request::DpoFiles(files))),
                    Ok(_) => {}
                    Err(e) => dispatch.emit(Action::Error(e)),
                }
            });
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
    html! {
        <div class={classes!("ps-drop", "ps-drop-small", dragging.then_some("ps-dragging"))} ondrop={on_drop} ondragover={on_over}
             ondragleave={on_leave} data-testid="dpo-drop">
            <label class="ps-control">{ "Load log-probabilities (JSONL, CSV, Parquet; several files are one run's evaluations) " }
                <input type="file" multiple=true accept=".jsonl,.ndjson,.json,.csv,.parquet,.pq" onchange={on_pick.clone()} data-testid="dpo-file" />
            </label>
            <label class="ps-file">{ "a run's folder" }<input type="file" webkitdirectory=true onchange={on_pick} data-testid="dpo-folder" /></label>
            <span class="ps-muted">{ " or drop files or a folder here" }</span>
        </div>
    }
}

/// Share of pair `i`'s absolute per-token reward on the tokens where its two sides differ.
fn differing_share(t: &prefscope_core::DpoTable, i: usize, beta: f64) -> Option<f64> {
    let (c, r) = (&t.chosen_tokens, &t.rejected_tokens);
    let (ct, rt) = (c.tokens.get(i)?, r.tokens.get(i)?);
    DifferingReward::of(ct, rt, &pair_token_rewards(c, i, beta), &pair_token_rewards(r, i, beta)).share()
}

/// The bundled DPO demo run: every checkpoint it exported.
#[derive(Properties, PartialEq)]
struct BundledRunProps {
    dispatch: Callback<Action>,
}

#[function_component(BundledRun)]
fn bundled_run(props: &BundledRunProps) -> Html {
    let dispatch = props.dispatch.clone();
    let onclick = Callback::from(move |_| dispatch.emit(Action::Request(Request::BundledDpo)));
    html! { <button type="button" {onclick} data-testid="dpo-bundled">{ "Bundled DPO run" }</button> }
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
    // The run's steps under the view's settings, on the CPU; computed when the settings or
    // the run change, not on every render nor when another step is shown.
    let summary = {
        let run = dpo.run.clone();
        let request = dpo_request(dpo);
        let key = (
            format!("{}|{}|{}", dpo.losses.join(","), dpo.beta, dpo.label_smoothing),
            run.as_ref().map(|r| Rc::as_ptr(r) as usize),
        );
        use_memo(key, move |_| {
            run.map(|run| {
                // How long the run took to compute (the page's benchmark reads it).
                let start = js_sys::Date::now();
                run_summary(&run, &request).map(|s| (s, js_sys::Date::now() - start))
            })
        })
    };
    // Metrics per subset (or category) of the shown evaluation.
    let subsets = {
        let data = dpo.data.clone();
        let request = dpo_request(dpo);
        let key = (dpo.key(), data.as_ref().map(|d| Rc::as_ptr(d) as usize));
        use_memo(key, move |_| data.and_then(|d| subset_table(&d, &request)))
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
            <BundledRun dispatch={dispatch.clone()} />
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
                <BundledRun dispatch={dispatch.clone()} />
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
        Preferences::Unpaired(_) => None,
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
    let margins = vec![Series::new(source.clone(), "neutral", r.margin.clone())];
    let run_panel = match (dpo.run.as_deref(), (*summary).as_ref()) {
        (Some(run), Some(Ok((summary, ms)))) => {
            let selected_id = dpo.selected.and_then(|i| r.ids.get(i).cloned());
            run_panel(run, summary, *ms, dpo.step, selected_id, table, dispatch)
        }
        (Some(_), Some(Err(e))) => html! { <p class="ps-error" role="alert">{ e.clone() }</p> },
        _ => html! {},
    };
    let calibration = reliability(&r.calibration);
    let subset_panel = (*subsets).clone().map(|(by, rows)| subset_panel(by, &rows));
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
            { run_panel }
            { diagnostics }
            <div class="ps-grid">{ calibration }{ subset_panel }</div>
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

/// The run over its steps: the metrics as lines (a click shows that step), the pairs whose
/// margin changed sign, the ids some step lacks, and the selected pair's trajectory.
fn run_panel(
    run: &DpoRun,
    summary: &RunSummary,
    ms: f64,
    step: usize,
    selected_id: Option<String>,
    table: Option<&prefscope_core::DpoTable>,
    dispatch: &Callback<Action>,
) -> Html {
    let xs: Vec<f64> = summary.steps.iter().map(|&s| s as f64).collect();
    let metric =
        |name: &str| summary.metrics.iter().map(|m| m.get(name).copied().unwrap_or(f64::NAN)).collect::<Vec<_>>();
    let has = |name: &str| summary.metrics.iter().any(|m| m.get(name).is_some_and(|v| v.is_finite()));
    let onstep = {
        let dispatch = dispatch.clone();
        Callback::from(move |i: usize| dispatch.emit(Action::DpoStep(i)))
    };
    let rewards = vec![
        Line::new("margin", "neutral", metric("rewards/margins")),
        Line::new("chosen β·log-ratio", "chosen", metric("rewards/chosen")),
        Line::new("rejected β·log-ratio", "rejected", metric("rewards/rejected")),
    ];
    let mut shares = vec![Line::new("reward accuracy", "chosen", metric("rewards/accuracies"))];
    if has("ranking/idealized_accuracy") {
        shares.push(Line::new("idealized ranking accuracy", "compared", metric("ranking/idealized_accuracy")));
    }
    shares.push(Line::new("ranking accuracy", "neutral", metric("ranking/accuracy")));
    shares.push(Line::new("chosen lost likelihood", "rejected", metric("diagnostics/chosen_logratio_negative")));
    shares.push(Line::new("both lost likelihood", "irrelevant", metric("diagnostics/both_logratios_negative")));
    shares.push(Line::new("ECE", "other", metric("calibration/ece")));
    let trajectory = selected_id.and_then(|id| {
        let t = summary.trajectories.get(&id)?;
        // The run's steps, a gap where the pair was not evaluated.
        let at = |values: &[f64]| {
            summary.steps.iter().map(|s| t.steps.iter().position(|x| x == s).map_or(f64::NAN, |k| values[k])).collect::<Vec<_>>()
        };
        Some(html! {
            <div data-testid="pair-trajectory" data-id={id.clone()} data-margins={format!("{:?}", t.margin)}>
                <Lines title={format!("pair {id} over the run")} xlabel="step" ylabel="reward" xs={xs.clone()} marker={Some(0.0)}
                       lines={vec![Line::new("margin", "neutral", at(&t.margin)), Line::new("chosen reward", "chosen", at(&t.chosen)),
                                   Line::new("rejected reward", "rejected", at(&t.rejected))]}
                       selected={Some(step)} onselect={Some(onstep.clone())} />
            </div>
        })
    });
    let index_of = |id: &str| table.and_then(|t| t.id.iter().position(|x| x == id));
    let flips = summary.flips.iter().rev().take(FLIP_ROWS).map(|f| {
        let row = index_of(&f.id);
        let dispatch = dispatch.clone();
        let onclick = Callback::from(move |_| {
            if let Some(i) = row {
                dispatch.emit(Action::DpoSelect(Some(i)));
            }
        });
        html! {
            <tr data-testid="flip" data-id={f.id.clone()} data-step={f.step.to_string()}>
                <td><button type="button" class="ps-link" disabled={row.is_none()} {onclick}>{ f.id.clone() }</button></td>
                <td>{ f.step }</td><td>{ fmt(f.from) }</td><td>{ fmt(f.to) }</td>
            </tr>
        }
    });
    let steps = run.steps.iter().enumerate().map(|(i, s)| {
        let dispatch = dispatch.clone();
        let onclick = Callback::from(move |_| dispatch.emit(Action::DpoStep(i)));
        html! { <button type="button" class={classes!("ps-step", (i == step).then_some("ps-selected"))} aria-pressed={(i == step).to_string()}
                        data-testid="dpo-step" data-step={s.to_string()} {onclick}>{ format!("step {s}") }</button> }
    });
    html! {
        <div class="ps-run" data-testid="dpo-run" data-steps={summary.steps.len().to_string()} data-flips={summary.flips.len().to_string()}
             data-ms={ms.to_string()}>
            <h2>{ format!("The run: {} evaluations, steps {} to {}", run.steps.len(), run.steps.first().unwrap_or(&0), run.steps.last().unwrap_or(&0)) }</h2>
            <div class="ps-controls" role="group" aria-label="shown step">{ for steps }</div>
            <div class="ps-grid">
                <Lines title="rewards over the run (means)" xlabel="step" ylabel="reward" xs={xs.clone()} lines={rewards}
                       marker={Some(0.0)} selected={Some(step)} onselect={Some(onstep.clone())} />
                <Lines title="accuracies and shares over the run" xlabel="step" ylabel="share" xs={xs.clone()} lines={shares}
                       selected={Some(step)} onselect={Some(onstep)} />
                { trajectory.unwrap_or_else(|| html! { <p class="ps-muted">{ "Select a pair to see its margin over the run." }</p> }) }
            </div>
            <table class="ps-table" data-testid="flips">
                <caption>{ format!("{} flips (a margin changing sign between two evaluations of a pair){}", summary.flips.len(),
                                   if summary.flips.len() > FLIP_ROWS { format!("; the latest {FLIP_ROWS}") } else { String::new() }) }</caption>
                <thead><tr><th scope="col">{ "id" }</th><th scope="col">{ "step" }</th><th scope="col">{ "margin before" }</th><th scope="col">{ "margin after" }</th></tr></thead>
                <tbody>{ for flips }</tbody>
            </table>
            { (!summary.missing.is_empty()).then(|| html! {
                <p class="ps-muted" data-testid="missing">{ format!("{} ids are missing from some step: {}{}", summary.missing.len(),
                    summary.missing.iter().take(10).cloned().collect::<Vec<_>>().join(", "), if summary.missing.len() > 10 { ", …" } else { "" }) }</p>
            }) }
        </div>
    }
}

/// The reliability diagram of σ(margin): each non-empty bin's mean confidence against the
/// share of its points whose answer won, beside the diagonal of perfect calibration.
fn reliability(calibration: &prefscope_core::preference::calibration::Calibration) -> Html {
    let points: Vec<Point> = calibration
        .bins
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| Point {
            x: b.confidence,
            y: b.accuracy,
            label: format!("{}–{} ({} points)", fmt(b.lo), fmt(b.hi), b.count),
            kind: "neutral",
        })
        .collect();
    html! {
        <div data-testid="reliability" data-ece={calibration.ece.to_string()}>
            <Scatter title={format!("reliability of σ(margin), both orders of each pair (ECE {}, Brier {})", fmt(calibration.ece), fmt(calibration.brier))}
                     xlabel="predicted probability the answer wins" ylabel="share that won" points={points} diagonals={vec![0.0]}
                     domain={Some(((0.0, 1.0), (0.0, 1.0)))} />
        </div>
    }
}

/// Per subset (or category) of the shown evaluation: its pairs and metrics, with the mean over
/// subsets (`prefscope dpo --by`'s numbers).
type SubsetRows = Vec<(String, usize, std::collections::BTreeMap<String, f64>)>;

fn subset_table(
    data: &Preferences,
    request: &prefscope_core::preference::report::ReportRequest,
) -> Option<(&'static str, SubsetRows)> {
    use prefscope_core::preference::report::subset_reports;
    use prefscope_core::preference::subsets::{group_rows, By};
    let Preferences::Dpo(t) = data else { return None };
    let by = if t.subset.any() {
        By::Subset
    } else if t.category.any() {
        By::Category
    } else {
        return None;
    };
    let labels = if by == By::Subset { &t.subset } else { &t.category };
    let groups = group_rows(&t.source, by, labels).ok()?;
    let (subsets, mean) = subset_reports(data, by, request).ok()?;
    let mut rows: SubsetRows = subsets
        .into_iter()
        .map(|(name, m)| {
            let n = groups[&name].len();
            (name, n, m)
        })
        .collect();
    rows.push(("mean over subsets".into(), groups.values().map(Vec::len).sum(), mean));
    Some((by.column(), rows))
}

fn subset_panel(by: &str, rows: &SubsetRows) -> Html {
    html! {
        <table class="ps-table" data-testid="subsets">
            <caption>{ format!("metrics per {by} (each {by}'s pairs alone)") }</caption>
            <thead><tr><th scope="col">{ by.to_string() }</th><th scope="col">{ "pairs" }</th>
                { for SUBSET_METRICS.iter().map(|k| html! { <th scope="col">{ k.to_string() }</th> }) }</tr></thead>
            <tbody>{ for rows.iter().map(|(name, n, m)| html! {
                <tr data-testid="subset" data-name={name.clone()}><th scope="row">{ name.clone() }</th><td>{ n }</td>
                    { for SUBSET_METRICS.iter().map(|k| { let v = m.get(*k).copied().unwrap_or(f64::NAN);
                        html! { <td data-name={k.to_string()} data-value={v.to_string()}>{ fmt(v) }</td> } }) }</tr>
            }) }</tbody>
        </table>
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
