//! Drawing primitives for the inline SVG charts of `report.html`: a plot frame that
//! maps data to pixels, "nice" axis ticks, grid lines, lines, dots and a legend. Small
//! on purpose; every chart the report draws is a few calls to these, and the page
//! carries no script and loads nothing.

use std::fmt::Write;

use super::junit::esc;

/// Series colours, chosen to stay apart for the common forms of colour blindness.
pub const PALETTE: [&str; 8] = [
    "#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#475569",
];

/// Failures, errors, missed SLOs.
pub const RED: &str = "#dc2626";
/// Met SLOs and the capacity marker.
pub const GREEN: &str = "#16a34a";

/// A chart's drawing area and the data ranges mapped onto it.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Width of the whole SVG, pixels (its viewBox; CSS scales it to the card).
    pub width: f64,
    /// Height of the whole SVG, pixels.
    pub height: f64,
    /// Margin for the y tick labels and axis title.
    pub left: f64,
    /// Margin on the right.
    pub right: f64,
    /// Margin above the plot.
    pub top: f64,
    /// Margin for the x tick labels and axis title.
    pub bottom: f64,
    /// Data range along x.
    pub x: (f64, f64),
    /// Data range along y.
    pub y: (f64, f64),
}

impl Frame {
    /// A frame of `width` x `height` pixels with room for axis labels.
    pub fn new(width: f64, height: f64, x: (f64, f64), y: (f64, f64)) -> Frame {
        Frame {
            width,
            height,
            left: 58.0,
            right: 16.0,
            top: 14.0,
            bottom: 40.0,
            x: widen(x),
            y: widen(y),
        }
    }

    /// Pixel column of data value `x`.
    pub fn px(&self, x: f64) -> f64 {
        let (a, b) = self.x;
        self.left + (x - a) / (b - a) * (self.width - self.left - self.right)
    }

    /// Pixel row of data value `y` (up is larger).
    pub fn py(&self, y: f64) -> f64 {
        let (a, b) = self.y;
        self.height - self.bottom - (y - a) / (b - a) * (self.height - self.top - self.bottom)
    }

    /// Opens the `<svg>` element; `label` is what a screen reader announces.
    pub fn open(&self, out: &mut String, label: &str) {
        let _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{l}">"#,
            w = self.width,
            h = self.height,
            l = esc(label)
        );
    }

    /// Horizontal grid lines with their labels on the left.
    pub fn y_grid(&self, out: &mut String, ticks: &[(f64, String)]) {
        for (v, label) in ticks {
            let y = self.py(*v);
            let _ = write!(
                out,
                r#"<line class="grid" x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                self.left,
                self.width - self.right,
                self.left - 6.0,
                y + 4.0,
                esc(label)
            );
        }
    }

    /// Tick marks and labels along the bottom.
    pub fn x_ticks(&self, out: &mut String, ticks: &[(f64, String)]) {
        let base = self.height - self.bottom;
        let _ = write!(
            out,
            r#"<line class="axis" x1="{:.1}" x2="{:.1}" y1="{base:.1}" y2="{base:.1}"/>"#,
            self.left,
            self.width - self.right
        );
        for (v, label) in ticks {
            let x = self.px(*v);
            let _ = write!(
                out,
                r#"<line class="axis" x1="{x:.1}" x2="{x:.1}" y1="{base:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                base + 4.0,
                base + 17.0,
                esc(label)
            );
        }
    }

    /// Axis titles: `x` centred under the ticks, `y` rotated along the left edge.
    pub fn titles(&self, out: &mut String, x: &str, y: &str) {
        let cx = (self.left + self.width - self.right) / 2.0;
        let cy = (self.top + self.height - self.bottom) / 2.0;
        let _ = write!(
            out,
            r#"<text class="axis-title" x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text><text class="axis-title" transform="translate(14 {cy:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            self.height - 6.0,
            esc(x),
            esc(y)
        );
    }

    /// A line through `points` (data coordinates).
    pub fn line(&self, out: &mut String, points: &[(f64, f64)], color: &str, dashed: bool) {
        if points.is_empty() {
            return;
        }
        let mut d = String::new();
        for (i, (x, y)) in points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { "L" },
                self.px(*x),
                self.py(*y)
            );
        }
        let _ = write!(
            out,
            r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round"{}/>"#,
            if dashed { r#" stroke-dasharray="5 4""# } else { "" }
        );
    }

    /// A dot with a hover tooltip.
    pub fn dot(&self, out: &mut String, x: f64, y: f64, color: &str, tip: &str) {
        let _ = write!(
            out,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}" stroke="#fff" stroke-width="1.5"><title>{}</title></circle>"##,
            self.px(x),
            self.py(y),
            esc(tip)
        );
    }

    /// A filled rectangle between two data corners, with a hover tooltip.
    pub fn rect(&self, out: &mut String, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: &str, tip: &str) {
        let (a, b) = (self.px(x0), self.px(x1));
        let (c, d) = (self.py(y0), self.py(y1));
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{}</title></rect>"#,
            a.min(b),
            c.min(d),
            (b - a).abs(),
            (d - c).abs(),
            esc(tip)
        );
    }

    /// Closes the `<svg>` element.
    pub fn close(out: &mut String) {
        out.push_str("</svg>");
    }
}

/// A zero-width range would divide by zero; give it some room.
fn widen((a, b): (f64, f64)) -> (f64, f64) {
    let (a, b) = if a.is_finite() && b.is_finite() {
        (a, b)
    } else {
        (0.0, 1.0)
    };
    if b > a {
        (a, b)
    } else if a == 0.0 {
        (0.0, 1.0)
    } else {
        (a - a.abs() * 0.1, a + a.abs() * 0.1)
    }
}

/// About `n` round tick values (steps of 1, 2 or 5 times a power of ten) covering
/// `0..=max`, and the top of the axis (the first tick at or above `max`).
pub fn nice_ticks(max: f64, n: usize) -> (Vec<f64>, f64) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let top = (max / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut k = 0.0;
    while k * step <= top + step * 1e-9 {
        ticks.push(k * step);
        k += 1.0;
    }
    (ticks, top)
}

/// A tick label without trailing noise: `0.25`, `2`, `1,500`.
pub fn tick_label(v: f64) -> String {
    if v.abs() >= 1000.0 {
        super::text::count(v.round() as u64)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A legend row: a swatch and a name per series.
pub fn legend(items: &[(&str, String)]) -> String {
    let mut out = String::from(r#"<div class="legend">"#);
    for (color, name) in items {
        let _ = write!(out, r#"<span><i style="background:{color}"></i>{}</span>"#, esc(name));
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (t, top) = nice_ticks(87.0, 5);
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(top, 100.0);
        let (t, top) = nice_ticks(0.9, 4);
        assert_eq!(top, 1.0);
        assert_eq!(t.len(), 5);
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(1500.0), "1,500");
    }

    #[test]
    fn frame_maps_data_to_pixels() {
        let f = Frame::new(200.0, 100.0, (0.0, 10.0), (0.0, 1.0));
        assert_eq!(f.px(0.0), f.left);
        assert_eq!(f.px(10.0), 200.0 - f.right);
        assert_eq!(f.py(0.0), 100.0 - f.bottom);
        assert_eq!(f.py(1.0), f.top);
    }
}
