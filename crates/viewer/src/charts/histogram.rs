//! Counts of one or two series in shared bins.

use prefscope_core::histogram::histogram;
use yew::prelude::*;

use super::ticks::value;
use super::{range, Frame};

/// One series of a histogram: its name (legend and tooltips), its colour's meaning (a
/// `ps-c-{kind}` class: chosen, rejected, relevant, irrelevant, neutral, or a band) and values.
#[derive(Clone, PartialEq)]
pub struct Series {
    pub name: AttrValue,
    pub kind: &'static str,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(name: impl Into<AttrValue>, kind: &'static str, values: Vec<f64>) -> Self {
        Series { name: name.into(), kind, values }
    }
}

#[derive(Properties, PartialEq)]
pub struct HistogramProps {
    pub title: AttrValue,
    /// What the values are (the x axis' title).
    pub xlabel: AttrValue,
    /// What is counted (the y axis' title: "pairs", "lists").
    #[prop_or(AttrValue::Static("count"))]
    pub counted: AttrValue,
    pub series: Vec<Series>,
    #[prop_or(24)]
    pub bins: usize,
    /// A dashed vertical marker (for example margin = 0).
    #[prop_or_default]
    pub marker: Option<f64>,
    /// The selected item's value, drawn as a solid line (the pair selected in another chart).
    #[prop_or_default]
    pub selected: Option<f64>,
}

/// prefscope-core's `histogram` (numpy's rule) per series over the same bins; bars side by side.
#[function_component(Histogram)]
pub fn histogram_chart(p: &HistogramProps) -> Html {
    let (lo, hi) = range(p.series.iter().flat_map(|s| s.values.iter()));
    let hists: Vec<_> = p.series.iter().map(|s| histogram(&s.values, p.bins, Some((lo, hi)))).collect();
    let peak = hists.iter().flat_map(|h| h.counts.iter()).copied().max().unwrap_or(1).max(1) as f64;
    let frame = Frame::new((lo, hi), (0.0, peak), true);
    let k = hists.len().max(1) as f64;
    let mut bars = Vec::new();
    for (s, h) in hists.iter().enumerate() {
        let series = &p.series[s];
        for (b, &count) in h.counts.iter().enumerate() {
            let (x0, x1) = (frame.sx(h.edges[b]), frame.sx(h.edges[b + 1]));
            let w = (x1 - x0) / k;
            let top = frame.sy(count as f64);
            let tip = format!(
                "{}: {} {} with {} in [{}, {})",
                series.name,
                count,
                p.counted,
                p.xlabel,
                value(h.edges[b]),
                value(h.edges[b + 1])
            );
            bars.push(html! {
                <rect class={format!("ps-bar ps-c-{}", series.kind)} x={(x0 + w * s as f64).to_string()} y={top.to_string()}
                      width={(w - 0.5).max(0.5).to_string()} height={(frame.sy(0.0) - top).to_string()}>
                    <title>{ tip }</title>
                </rect>
            });
        }
    }
    let marker = p.marker.map(|m| frame.vertical(m, "ps-marker"));
    let selected = p.selected.filter(|v| v.is_finite()).map(|v| frame.vertical(v, "ps-selected-line"));
    let legend = (p.series.len() > 1).then(|| {
        html! { <>{ for p.series.iter().map(|s| html! { <span class={format!("ps-legend ps-c-{}", s.kind)}>{ s.name.clone() }</span> }) }</> }
    });
    html! {
        <figure class="ps-chart">
            <figcaption>{ p.title.clone() }{ legend }</figcaption>
            <svg viewBox={Frame::view_box()} role="img" aria-label={format!("{}: histogram of {}", p.title, p.xlabel)}>
                { frame.axes(&p.xlabel, &p.counted) }
                { for bars }
                { marker }
                { selected }
            </svg>
        </figure>
    }
}
