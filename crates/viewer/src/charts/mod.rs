//! The one chart component every view draws with: SVG built as yew elements (not a picture),
//! so every bar and point is a DOM node with a tooltip, selectable, reachable from the
//! keyboard and visible to tests and screen readers. A plotting crate's SVG backend (plotters)
//! writes a finished picture instead, with no events or titles on its marks.
//!
//! The layout is computed, not fixed: the tick labels are chosen first (`ticks`), and the
//! margins are made wide enough for the widest of them and the axis titles, so no two texts
//! overlap whatever the data. Colours come from the Okabe–Ito palette (prefscope.css), one
//! meaning each: chosen/right, rejected/wrong, relevant, irrelevant, and the strength bands.

mod histogram;
mod lines;
mod scatter;
pub mod ticks;

pub use histogram::{Histogram, Series};
pub use lines::{Line, Lines};
pub use scatter::{Point, Scatter};

use ticks::Ticks;
use yew::prelude::*;

/// The drawing's size in SVG units (it scales to the page's width; proportions stay).
const W: f64 = 480.0;
const H: f64 = 250.0;
/// Font size of the axes' texts, in SVG units (prefscope.css sets the same).
const FONT: f64 = 11.0;
/// A generous advance per character of that font (DejaVu Sans digits are 0.64 em).
const CHAR: f64 = 0.68 * FONT;
const GAP: f64 = 6.0;
/// A line of that font as browsers box it (ascent plus descent), and the descent alone.
const LINE: f64 = 1.2 * FONT;
const DESCENT: f64 = 0.4 * FONT;
/// The x tick labels' baseline below the axis.
const X_TICK_BASELINE: f64 = 2.0 * GAP + FONT;

/// Where the plot area sits, and the axes' ticks.
pub(crate) struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x: Ticks,
    y: Ticks,
}

fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR
}

impl Frame {
    /// Ticks for both axes and margins that fit them: the y labels' widest sets the left
    /// margin; as many x ticks as fit side by side with a gap between labels.
    pub(crate) fn new(x: (f64, f64), y: (f64, f64), y_counts: bool) -> Self {
        let y = ticks::ticks(y.0, y.1, 6, y_counts);
        let widest_y = y.labels.iter().map(|l| text_width(l)).fold(0.0, f64::max);
        // y title (rotated, one line tall), a gap, the tick labels, a gap, the axis.
        let left = GAP + FONT + GAP + widest_y + GAP;
        let top = GAP + FONT / 2.0;
        // Tick labels (their baseline two gaps and a font height below the axis, clear of the
        // lowest y label centred on it), then the x title, a line tall, and a descent each.
        let bottom = H - (X_TICK_BASELINE + DESCENT + GAP + LINE + DESCENT);
        let mut max = 8;
        let (x, right) = loop {
            let t = ticks::ticks(x.0, x.1, max, false);
            let widest = t.labels.iter().map(|l| text_width(l)).fold(0.0, f64::max);
            // The last label is centred on the axis' end: half of it must fit in the margin.
            let right = W - (GAP + widest / 2.0).max(2.0 * GAP);
            let spacing = (right - left) / (t.values.len().max(2) - 1) as f64;
            if spacing >= widest + 2.0 * GAP || max == 2 {
                break (t, right);
            }
            max -= 1;
        };
        Frame { left, right, top, bottom, x, y }
    }

    pub(crate) fn sx(&self, v: f64) -> f64 {
        let (a, b) = self.x.domain;
        self.left + (v - a) / (b - a) * (self.right - self.left)
    }

    pub(crate) fn sy(&self, v: f64) -> f64 {
        let (a, b) = self.y.domain;
        self.bottom - (v - a) / (b - a) * (self.bottom - self.top)
    }

    /// The axes: lines, grid, tick labels and both titles.
    pub(crate) fn axes(&self, xlabel: &str, ylabel: &str) -> Html {
        let (l, r, t, b) = (self.left, self.right, self.top, self.bottom);
        let xs = self.x.values.iter().zip(&self.x.labels).map(|(&v, label)| {
            let x = self.sx(v);
            html! { <>
                <line class="ps-grid-line" x1={x.to_string()} x2={x.to_string()} y1={t.to_string()} y2={b.to_string()} />
                <text x={x.to_string()} y={(b + X_TICK_BASELINE).to_string()} text-anchor="middle">{ label.clone() }</text>
            </> }
        });
        let ys = self.y.values.iter().zip(&self.y.labels).map(|(&v, label)| {
            let y = self.sy(v);
            html! { <>
                <line class="ps-grid-line" x1={l.to_string()} x2={r.to_string()} y1={y.to_string()} y2={y.to_string()} />
                <text x={(l - GAP).to_string()} y={(y + FONT * 0.35).to_string()} text-anchor="end">{ label.clone() }</text>
            </> }
        });
        // The y title's baseline sits one font height from the edge, rotated about itself.
        let (ty_x, ty_y) = (GAP + FONT * 0.8, (t + b) / 2.0);
        html! {
            <g class="ps-axes" aria-hidden="true">
                { for xs }
                { for ys }
                <line x1={l.to_string()} x2={r.to_string()} y1={b.to_string()} y2={b.to_string()} />
                <line x1={l.to_string()} x2={l.to_string()} y1={t.to_string()} y2={b.to_string()} />
                <text class="ps-axis-title" x={((l + r) / 2.0).to_string()} y={(H - DESCENT).to_string()} text-anchor="middle">{ xlabel.to_string() }</text>
                <text class="ps-axis-title" x={ty_x.to_string()} y={ty_y.to_string()} transform={format!("rotate(-90 {ty_x} {ty_y})")}
                      text-anchor="middle">{ ylabel.to_string() }</text>
            </g>
        }
    }

    /// A dashed vertical line at `v` across the plot, when `v` is on the axis.
    pub(crate) fn vertical(&self, v: f64, class: &'static str) -> Html {
        let (a, b) = self.x.domain;
        if !(a..=b).contains(&v) {
            return html! {};
        }
        let x = self.sx(v).to_string();
        html! { <line class={class} x1={x.clone()} x2={x} y1={self.top.to_string()} y2={self.bottom.to_string()} /> }
    }

    /// A dashed horizontal line at `v` across the plot, when `v` is on the axis.
    pub(crate) fn horizontal(&self, v: f64, class: &'static str) -> Html {
        let (a, b) = self.y.domain;
        if !(a..=b).contains(&v) {
            return html! {};
        }
        let y = self.sy(v).to_string();
        html! { <line class={class} x1={self.left.to_string()} x2={self.right.to_string()} y1={y.clone()} y2={y} /> }
    }

    pub(crate) fn view_box() -> String {
        format!("0 0 {W} {H}")
    }
}

/// The finite range of some values, widened when empty or flat.
pub(crate) fn range<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts as boxes (centre-anchored x labels, end-anchored y labels) never meet.
    #[test]
    fn tick_labels_leave_room_for_each_other_and_the_titles() {
        for (x, y) in [((-12345.6, 98765.4), (0.0, 3.0)), ((-0.001, 0.002), (-1e6, 2e6)), ((0.0, 1.0), (0.0, 1.0))] {
            let f = Frame::new(x, y, false);
            let boxes: Vec<(f64, f64)> =
                f.x.values
                    .iter()
                    .zip(&f.x.labels)
                    .map(|(&v, l)| {
                        let c = f.sx(v);
                        (c - text_width(l) / 2.0, c + text_width(l) / 2.0)
                    })
                    .collect();
            for w in boxes.windows(2) {
                assert!(w[0].1 + GAP <= w[1].0, "x labels {:?} at {boxes:?}", f.x.labels);
            }
            assert!(boxes.last().unwrap().1 <= W, "last x label inside: {boxes:?}");
            let widest = f.y.labels.iter().map(|l| text_width(l)).fold(0.0, f64::max);
            assert!(f.left - GAP - widest >= GAP + FONT, "y labels clear the y title");
        }
    }
}
