//! Small SVG charts drawn as yew elements (not a picture): every bar and point is a DOM node
//! with a tooltip, clickable, and visible to tests and screen readers.

use prefscope_core::histogram::histogram;
use yew::prelude::*;

const W: f64 = 420.0;
const H: f64 = 220.0;
const PAD: f64 = 36.0;

fn ticks(lo: f64, hi: f64) -> [f64; 3] {
    [lo, (lo + hi) / 2.0, hi]
}

fn short(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// The finite range of some series, widened when empty or flat.
fn range<'a>(series: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (lo, hi) =
        series.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

#[derive(Properties, PartialEq)]
pub struct HistogramProps {
    pub title: AttrValue,
    /// One or two series (name, values), drawn over the same bins.
    pub series: Vec<(AttrValue, Vec<f64>)>,
    #[prop_or(24)]
    pub bins: usize,
    /// A vertical marker (for example margin = 0).
    #[prop_or_default]
    pub marker: Option<f64>,
}

/// Counts of each series in shared bins (prefscope-core's `histogram`, numpy's rule).
#[function_component(Histogram)]
pub fn histogram_chart(p: &HistogramProps) -> Html {
    let (lo, hi) = range(p.series.iter().flat_map(|(_, v)| v.iter()));
    let hists: Vec<_> = p.series.iter().map(|(_, v)| histogram(v, p.bins, Some((lo, hi)))).collect();
    let peak = hists.iter().flat_map(|h| h.counts.iter()).copied().max().unwrap_or(1).max(1) as f64;
    let x = |v: f64| PAD + (v - lo) / (hi - lo) * (W - 2.0 * PAD);
    let y = |c: f64| H - PAD - c / peak * (H - 2.0 * PAD);
    let k = hists.len().max(1) as f64;
    let mut bars = Vec::new();
    for (s, h) in hists.iter().enumerate() {
        for (b, &count) in h.counts.iter().enumerate() {
            let (x0, x1) = (x(h.edges[b]), x(h.edges[b + 1]));
            let w = (x1 - x0) / k;
            let tip = format!("{}: [{}, {}) → {count}", p.series[s].0, short(h.edges[b]), short(h.edges[b + 1]));
            bars.push(html! {
                <rect class={format!("ps-bar ps-series-{s}")} x={(x0 + w * s as f64).to_string()} y={y(count as f64).to_string()}
                      width={(w - 0.5).max(0.5).to_string()} height={(H - PAD - y(count as f64)).to_string()}>
                    <title>{tip}</title>
                </rect>
            });
        }
    }
    let marker = p.marker.filter(|m| *m >= lo && *m <= hi).map(|m| {
        html! { <line class="ps-marker" x1={x(m).to_string()} x2={x(m).to_string()} y1={PAD.to_string()} y2={(H - PAD).to_string()} /> }
    });
    html! {
        <figure class="ps-chart">
            <figcaption>{ p.title.clone() }
                { for p.series.iter().enumerate().filter(|_| p.series.len() > 1).map(|(s, (name, _))| html! {
                    <span class={format!("ps-legend ps-series-{s}")}>{ name.clone() }</span>
                }) }
            </figcaption>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={p.title.clone()}>
                { axes(lo, hi, 0.0, peak, "", "count") }
                { for bars }
                { marker }
            </svg>
        </figure>
    }
}

fn axes(x0: f64, x1: f64, y0: f64, y1: f64, xlabel: &str, ylabel: &str) -> Html {
    let sx = |v: f64| PAD + (v - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let sy = |v: f64| H - PAD - (v - y0) / (y1 - y0) * (H - 2.0 * PAD);
    html! {
        <g class="ps-axes">
            <line x1={PAD.to_string()} x2={(W - PAD).to_string()} y1={(H - PAD).to_string()} y2={(H - PAD).to_string()} />
            <line x1={PAD.to_string()} x2={PAD.to_string()} y1={PAD.to_string()} y2={(H - PAD).to_string()} />
            { for ticks(x0, x1).iter().map(|&t| html! {
                <text x={sx(t).to_string()} y={(H - PAD + 14.0).to_string()} text-anchor="middle">{ short(t) }</text>
            }) }
            { for ticks(y0, y1).iter().map(|&t| html! {
                <text x={(PAD - 4.0).to_string()} y={(sy(t) + 4.0).to_string()} text-anchor="end">{ short(t) }</text>
            }) }
            <text x={(W / 2.0).to_string()} y={(H - 4.0).to_string()} text-anchor="middle">{ xlabel.to_string() }</text>
            <text x="10" y={(H / 2.0).to_string()} transform={format!("rotate(-90 10 {})", H / 2.0)} text-anchor="middle">{ ylabel.to_string() }</text>
        </g>
    }
}

/// One point of a scatter.
#[derive(Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub label: String,
    /// CSS class suffix (`ps-point-{kind}`).
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
    #[prop_or_default]
    pub onselect: Option<Callback<usize>>,
    #[prop_or_default]
    pub selected: Option<usize>,
    /// Draw the axes `x = 0` and `y = 0` (quadrants).
    #[prop_or_default]
    pub zero_lines: bool,
}

/// Points a scatter draws at most: SVG nodes beyond a few thousand make the page sluggish;
/// larger sets are thinned evenly (the axes still span every point).
const MAX_POINTS: usize = 4000;

#[function_component(Scatter)]
pub fn scatter(p: &ScatterProps) -> Html {
    let (x0, x1) = range(p.points.iter().map(|q| &q.x));
    let (y0, y1) = range(p.points.iter().map(|q| &q.y));
    let sx = |v: f64| PAD + (v - x0) / (x1 - x0) * (W - 2.0 * PAD);
    let sy = |v: f64| H - PAD - (v - y0) / (y1 - y0) * (H - 2.0 * PAD);
    let lines = p.diagonals.iter().map(|&c| {
        // y = x + c clipped to the box: two x ends.
        let (a, b) = (x0.max(y0 - c), x1.min(y1 - c));
        if a >= b {
            return html! {};
        }
        html! { <line class="ps-diagonal" x1={sx(a).to_string()} y1={sy(a + c).to_string()} x2={sx(b).to_string()} y2={sy(b + c).to_string()} /> }
    });
    let zero = p.zero_lines.then(|| {
        let vertical = (x0 <= 0.0 && 0.0 <= x1).then(|| {
            html! { <line class="ps-marker" x1={sx(0.0).to_string()} x2={sx(0.0).to_string()} y1={PAD.to_string()} y2={(H - PAD).to_string()} /> }
        });
        let horizontal = (y0 <= 0.0 && 0.0 <= y1).then(|| {
            html! { <line class="ps-marker" x1={PAD.to_string()} x2={(W - PAD).to_string()} y1={sy(0.0).to_string()} y2={sy(0.0).to_string()} /> }
        });
        html! { <>{ vertical }{ horizontal }</> }
    });
    let stride = p.points.len().div_ceil(MAX_POINTS).max(1);
    let shown = p.points.len().div_ceil(stride);
    let points = p.points.iter().enumerate().step_by(stride).chain(
        // The selected point is always drawn.
        p.selected.filter(|s| s % stride != 0).and_then(|s| p.points.get(s).map(|q| (s, q))),
    );
    let points = points.map(|(i, q)| {
        let onclick = p.onselect.clone().map(|cb| Callback::from(move |_: MouseEvent| cb.emit(i)));
        let selected = p.selected == Some(i);
        html! {
            <circle class={classes!("ps-point", format!("ps-point-{}", q.kind), selected.then_some("ps-selected"))}
                    cx={sx(q.x).to_string()} cy={sy(q.y).to_string()} r={if selected { "5" } else { "3" }} {onclick}>
                <title>{ format!("{}: ({}, {})", q.label, short(q.x), short(q.y)) }</title>
            </circle>
        }
    });
    html! {
        <figure class="ps-chart">
            <figcaption>{ p.title.clone() }
                { (stride > 1).then(|| html! { <span class="ps-muted">{ format!(" (every {stride}th of {} points: {shown} shown)", p.points.len()) }</span> }) }
            </figcaption>
            <svg viewBox={format!("0 0 {W} {H}")} role="img" aria-label={p.title.clone()}>
                { axes(x0, x1, y0, y1, &p.xlabel, &p.ylabel) }
                { for lines }
                { zero }
                { for points }
            </svg>
        </figure>
    }
}
