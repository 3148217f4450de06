//! Values over a shared x (metrics over training steps, one pair's margin over them): a line
//! per series with its points marked. The x positions form one listbox, as a scatter's points
//! do: Tab reaches the chart, the arrow keys walk the positions, Enter or Space selects one (a
//! step), and a click on any point of a position selects it too.

use std::sync::atomic::{AtomicUsize, Ordering};

use yew::prelude::*;

use super::ticks::value;
use super::{range, Frame};

/// One line: a value per x position (NaN where it has none; the line breaks there).
#[derive(Clone, PartialEq)]
pub struct Line {
    pub label: String,
    /// Its colour's meaning (`ps-c-{kind}`).
    pub kind: &'static str,
    pub values: Vec<f64>,
}

impl Line {
    pub fn new(label: impl Into<String>, kind: &'static str, values: Vec<f64>) -> Self {
        Self { label: label.into(), kind, values }
    }
}

#[derive(Properties, PartialEq)]
pub struct LinesProps {
    pub title: AttrValue,
    pub xlabel: AttrValue,
    pub ylabel: AttrValue,
    /// The x positions, increasing (steps).
    pub xs: Vec<f64>,
    pub lines: Vec<Line>,
    /// Called with an x position's index when it is clicked or chosen from the keyboard.
    #[prop_or_default]
    pub onselect: Option<Callback<usize>>,
    /// The selected position, marked by a vertical line.
    #[prop_or_default]
    pub selected: Option<usize>,
    /// A dashed horizontal line (zero for margins).
    #[prop_or_default]
    pub marker: Option<f64>,
}

static CHARTS: AtomicUsize = AtomicUsize::new(0);

#[function_component(Lines)]
pub fn lines(p: &LinesProps) -> Html {
    let id = *use_state(|| CHARTS.fetch_add(1, Ordering::Relaxed));
    let active = use_state(|| None::<usize>);
    let ys = p.lines.iter().flat_map(|l| l.values.iter()).chain(p.marker.iter());
    let frame = Frame::new(range(p.xs.iter()), range(ys), false);
    let n = p.xs.len();
    let current = (*active).filter(|a| *a < n).or(p.selected).or((n > 0).then_some(0));
    let position_id = move |i: usize| format!("ps-lines{id}-x{i}");
    let select = |i: usize| {
        let (cb, active) = (p.onselect.clone(), active.clone());
        Callback::from(move |_: MouseEvent| {
            active.set(Some(i));
            if let Some(cb) = &cb {
                cb.emit(i);
            }
        })
    };
    let paths = p.lines.iter().map(|l| {
        // Segments between consecutive finite values.
        let mut d = String::new();
        let mut open = false;
        for (x, y) in p.xs.iter().zip(&l.values) {
            if y.is_finite() {
                d += &format!("{}{:.2},{:.2} ", if open { "L" } else { "M" }, frame.sx(*x), frame.sy(*y));
                open = true;
            } else {
                open = false;
            }
        }
        html! { <path class={classes!("ps-line", format!("ps-c-{}", l.kind))} d={d} /> }
    });
    let positions = (0..n).map(|i| {
        let tip = std::iter::once(format!("{} {}", p.xlabel, value(p.xs[i])))
            .chain(p.lines.iter().filter_map(|l| {
                l.values.get(i).filter(|v| v.is_finite()).map(|v| format!("{} {}", l.label, value(*v)))
            }))
            .collect::<Vec<_>>()
            .join(", ");
        let selected = p.selected == Some(i);
        let marks = p.lines.iter().filter_map(|l| {
            let y = *l.values.get(i)?;
            y.is_finite().then(|| {
                html! {
                    <circle class={classes!("ps-point", format!("ps-c-{}", l.kind))} cx={frame.sx(p.xs[i]).to_string()}
                            cy={frame.sy(y).to_string()} r={if selected { "4.5" } else { "3" }} onclick={select(i)} />
                }
            })
        });
        html! {
            <g id={position_id(i)} role="option" aria-selected={selected.to_string()} aria-label={tip.clone()}
               class={classes!((current == Some(i)).then_some("ps-active"))} data-x={p.xs[i].to_string()}>
                // One tooltip for the position (its name is the text it holds).
                <title>{ tip.clone() }</title>
                { for marks }
            </g>
        }
    });
    let onkeydown = {
        let (cb, active) = (p.onselect.clone(), active.clone());
        Callback::from(move |e: KeyboardEvent| {
            let at = current.unwrap_or(0);
            let last = n.saturating_sub(1);
            let to = match e.key().as_str() {
                "ArrowRight" | "ArrowDown" => at.saturating_add(1).min(last),
                "ArrowLeft" | "ArrowUp" => at.saturating_sub(1),
                "Home" => 0,
                "End" => last,
                "Enter" | " " => {
                    e.prevent_default();
                    if let Some(cb) = &cb {
                        if at < n {
                            cb.emit(at);
                        }
                    }
                    return;
                }
                _ => return,
            };
            e.prevent_default();
            active.set(Some(to));
        })
    };
    let selected_line = p.selected.filter(|i| *i < n).map(|i| frame.vertical(p.xs[i], "ps-marker"));
    html! {
        <figure class="ps-chart">
            <figcaption>{ p.title.clone() }
                { for p.lines.iter().map(|l| html! { <span class={format!("ps-legend ps-c-{}", l.kind)}>{ l.label.clone() }</span> }) }
            </figcaption>
            <svg viewBox={Frame::view_box()} role="group" aria-label={p.title.clone()}>
                { frame.axes(&p.xlabel, &p.ylabel) }
                { p.marker.map(|m| frame.horizontal(m, "ps-marker")) }
                { selected_line }
                { for paths }
                <g class="ps-points" role="listbox" tabindex="0" aria-activedescendant={current.map(position_id)} {onkeydown}
                   aria-label={format!("{n} {}: {}; arrow keys move, Enter selects", p.xlabel, p.lines.iter().map(|l| l.label.as_str()).collect::<Vec<_>>().join(", "))}>
                    { for positions }
                </g>
            </svg>
        </figure>
    }
}
