//! Points, each one item (a pair, an image × prompt): a tooltip names it and its values, a click
//! or the keyboard selects it. The points form one listbox: Tab reaches the chart, the arrow
//! keys walk the points from left to right, Enter or Space selects (the pattern of
//! aria-activedescendant, so focus stays on the chart while the active point moves).

use std::sync::atomic::{AtomicUsize, Ordering};

use yew::prelude::*;

use super::ticks::value;
use super::{range, Frame};

/// One point of a scatter.
#[derive(Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    /// What it is (a pair id; an image × prompt).
    pub label: String,
    /// Its colour's meaning (`ps-c-{kind}`: right, wrong, own, other).
    pub kind: &'static str,
}

#[derive(Properties, PartialEq)]
pub struct ScatterProps {
    pub title: AttrValue,
    pub xlabel: AttrValue,
    pub ylabel: AttrValue,
    pub points: Vec<Point>,
    /// Lines `y = x + c` for each `c` (the diagonal, a flip threshold).
    #[prop_or_default]
    pub diagonals: Vec<f64>,
    /// Called with a point's index when it is clicked or chosen from the keyboard.
    #[prop_or_default]
    pub onselect: Option<Callback<usize>>,
    /// The selected item, drawn larger (the same item in every chart of a view).
    #[prop_or_default]
    pub selected: Option<usize>,
    /// Draw the axes `x = 0` and `y = 0` (quadrants).
    #[prop_or_default]
    pub zero_lines: bool,
    /// What each colour means: (kind, words), shown beside the title.
    #[prop_or_default]
    pub legend: Vec<(&'static str, &'static str)>,
    /// Fixed axes ((x from, x to), (y from, y to)) instead of the points' range (a reliability
    /// diagram spans [0, 1] on both).
    #[prop_or_default]
    pub domain: Option<((f64, f64), (f64, f64))>,
}

/// Points a scatter draws at most: SVG nodes beyond a few thousand make the page sluggish;
/// larger sets are thinned evenly (the axes still span every point).
const MAX_POINTS: usize = 4000;

/// Distinct element ids across the charts on a page.
static CHARTS: AtomicUsize = AtomicUsize::new(0);

#[function_component(Scatter)]
pub fn scatter(p: &ScatterProps) -> Html {
    let id = *use_state(|| CHARTS.fetch_add(1, Ordering::Relaxed));
    // The point the keyboard is on (an index into `p.points`).
    let active = use_state(|| None::<usize>);
    let (xs, ys) =
        p.domain.unwrap_or_else(|| (range(p.points.iter().map(|q| &q.x)), range(p.points.iter().map(|q| &q.y))));
    let frame = Frame::new(xs, ys, false);
    let (x0, x1) = frame.x.domain;
    let (y0, y1) = frame.y.domain;
    let lines = p.diagonals.iter().map(|&c| {
        // y = x + c clipped to the box: two x ends.
        let (a, b) = (x0.max(y0 - c), x1.min(y1 - c));
        if a >= b {
            return html! {};
        }
        html! { <line class="ps-diagonal" x1={frame.sx(a).to_string()} y1={frame.sy(a + c).to_string()} x2={frame.sx(b).to_string()} y2={frame.sy(b + c).to_string()} /> }
    });
    let zero =
        p.zero_lines.then(|| html! { <>{ frame.vertical(0.0, "ps-marker") }{ frame.horizontal(0.0, "ps-marker") }</> });
    let stride = p.points.len().div_ceil(MAX_POINTS).max(1);
    let shown = p.points.len().div_ceil(stride);
    // The drawn points, left to right (the keyboard's order); the selected one always drawn.
    let mut order: Vec<usize> = (0..p.points.len()).step_by(stride).collect();
    if let Some(s) = p.selected.filter(|s| s % stride != 0 && *s < p.points.len()) {
        order.push(s);
    }
    order.sort_by(|&a, &b| p.points[a].x.total_cmp(&p.points[b].x).then(a.cmp(&b)));
    let current = (*active).filter(|a| order.contains(a)).or(p.selected).or(order.first().copied());
    let point_id = move |i: usize| format!("ps-chart{id}-point{i}");
    let points = order.iter().map(|&i| {
        let q = &p.points[i];
        let onclick = {
            let (cb, active) = (p.onselect.clone(), active.clone());
            Callback::from(move |_: MouseEvent| {
                active.set(Some(i));
                if let Some(cb) = &cb {
                    cb.emit(i);
                }
            })
        };
        let selected = p.selected == Some(i);
        let tip = format!("{}: {} {}, {} {}", q.label, p.xlabel, value(q.x), p.ylabel, value(q.y));
        html! {
            <circle id={point_id(i)} class={classes!("ps-point", format!("ps-c-{}", q.kind), selected.then_some("ps-selected"), (current == Some(i)).then_some("ps-active"))}
                    cx={frame.sx(q.x).to_string()} cy={frame.sy(q.y).to_string()} r={if selected { "5" } else { "3" }}
                    role="option" aria-selected={selected.to_string()} aria-label={tip.clone()} data-id={q.label.clone()} {onclick}>
                <title>{ tip }</title>
            </circle>
        }
    });
    let onkeydown = {
        let (cb, active, order) = (p.onselect.clone(), active.clone(), order.clone());
        Callback::from(move |e: KeyboardEvent| {
            let at = current.and_then(|c| order.iter().position(|&i| i == c)).unwrap_or(0);
            let last = order.len().saturating_sub(1);
            let to = match e.key().as_str() {
                "ArrowRight" | "ArrowDown" => at.saturating_add(1).min(last),
                "ArrowLeft" | "ArrowUp" => at.saturating_sub(1),
                "Home" => 0,
                "End" => last,
                "Enter" | " " => {
                    e.prevent_default();
                    if let (Some(cb), Some(&i)) = (&cb, order.get(at)) {
                        cb.emit(i);
                    }
                    return;
                }
                _ => return,
            };
            e.prevent_default();
            active.set(order.get(to).copied());
        })
    };
    let interactive = p.onselect.is_some();
    html! {
        <figure class="ps-chart">
            <figcaption>{ p.title.clone() }
                { for p.legend.iter().map(|(kind, words)| html! { <span class={format!("ps-legend ps-c-{kind}")}>{ *words }</span> }) }
                { (stride > 1).then(|| html! { <span class="ps-muted">{ format!(" (every {stride}th of {} points: {shown} shown)", p.points.len()) }</span> }) }
            </figcaption>
            <svg viewBox={Frame::view_box()} role="group" aria-label={p.title.clone()}>
                { frame.axes(&p.xlabel, &p.ylabel) }
                { for lines }
                { zero }
                <g class="ps-points" role="listbox" aria-label={format!("{} points: {} against {}{}", p.points.len(), p.ylabel, p.xlabel,
                        if interactive { "; arrow keys move, Enter selects" } else { "" })}
                   tabindex="0" aria-activedescendant={current.map(point_id)} {onkeydown}>
                    { for points }
                </g>
            </svg>
        </figure>
    }
}
