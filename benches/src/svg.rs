//! Line charts as SVG, for `ipam-bench report` (no plotting dependency: a few axes, lines
//! and labels).
use std::fmt::Write;

/// One line of a chart.
pub struct Series {
    /// Legend.
    pub name: String,
    /// One value per x; `NaN` leaves a gap.
    pub ys: Vec<f64>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];
const DASH: [&str; 6] = ["", "6,3", "2,2", "8,3,2,3", "1,3", "10,4"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.3}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.3}k", v / 1e3)
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
    .trim_end_matches('0')
    .trim_end_matches('.')
    .to_string()
}

/// A chart: x values (categories placed evenly, or on a log scale when `log_x`), a log or
/// linear y axis, one line per series, with markers, a legend and labelled axes.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[f64],
    series: &[Series],
    log_y: bool,
) -> String {
    let (w, h) = (720.0, 420.0);
    let (l, r, t, b) = (80.0, 200.0, 40.0, 60.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|s| s.ys.iter().copied())
        .filter(|v| v.is_finite() && (!log_y || *v > 0.0))
        .collect();
    let (mut lo, mut hi) = vals
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    if vals.is_empty() {
        (lo, hi) = (0.0, 1.0);
    }
    if log_y {
        lo = 10f64.powf(lo.log10().floor());
        hi = 10f64.powf(hi.log10().ceil());
        if hi <= lo {
            hi = lo * 10.0;
        }
    } else {
        lo = 0.0f64.min(lo);
        hi = if hi <= lo { lo + 1.0 } else { hi * 1.1 };
    }
    let y_of = |v: f64| -> f64 {
        let f = if log_y {
            (v.log10() - lo.log10()) / (hi.log10() - lo.log10())
        } else {
            (v - lo) / (hi - lo)
        };
        t + ph * (1.0 - f)
    };
    let n = xs.len().max(1);
    let x_of = |i: usize| -> f64 {
        if n == 1 {
            l + pw / 2.0
        } else {
            l + pw * i as f64 / (n - 1) as f64
        }
    };
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        l,
        esc(title)
    );
    // Grid and y ticks.
    let ticks: Vec<f64> = if log_y {
        let mut v = Vec::new();
        let mut x = lo;
        while x <= hi * 1.0001 {
            v.push(x);
            x *= 10.0;
        }
        v
    } else {
        (0..=5)
            .map(|i| lo + (hi - lo) * f64::from(i) / 5.0)
            .collect()
    };
    for tv in ticks {
        let y = y_of(tv);
        let _ = write!(
            o,
            r##"<line x1="{l}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            l + pw,
            l - 6.0,
            y + 4.0,
            fmt_num(tv)
        );
    }
    for (i, xv) in xs.iter().enumerate() {
        let x = x_of(i);
        let _ = write!(
            o,
            r##"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            t + ph,
            t + ph + 18.0,
            fmt_num(*xv)
        );
    }
    let _ = write!(
        o,
        r##"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(18 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
        l + pw / 2.0,
        h - 15.0,
        esc(x_label),
        t + ph / 2.0,
        esc(&format!(
            "{y_label}{}",
            if log_y { " (log scale)" } else { "" }
        ))
    );
    for (si, s) in series.iter().enumerate() {
        let c = COLORS[si % COLORS.len()];
        let dash = DASH[si % DASH.len()];
        let mut path = String::new();
        let mut pen = false;
        for (i, v) in s.ys.iter().enumerate() {
            if !v.is_finite() || (log_y && *v <= 0.0) {
                pen = false;
                continue;
            }
            let _ = write!(
                path,
                "{}{:.1},{:.1} ",
                if pen { "L" } else { "M" },
                x_of(i),
                y_of(*v)
            );
            pen = true;
            // Markers differ by series too (not only by colour).
            let (x, y) = (x_of(i), y_of(*v));
            let _ = match si % 3 {
                0 => write!(o, r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{c}"/>"#),
                1 => write!(
                    o,
                    r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="{c}"/>"#,
                    x - 4.0,
                    y - 4.0
                ),
                _ => write!(
                    o,
                    r#"<path d="M{x:.1},{:.1} l5,9 h-10 z" fill="{c}"/>"#,
                    y - 5.0
                ),
            };
            let _ = write!(o, r#"<title>{}: {}</title>"#, esc(&s.name), fmt_num(*v));
        }
        let _ = write!(
            o,
            r#"<path d="{path}" fill="none" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/>"#
        );
        let ly = t + 10.0 + 22.0 * si as f64;
        let _ = write!(
            o,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{}</text>"#,
            l + pw + 12.0,
            l + pw + 40.0,
            l + pw + 46.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_its_series_and_escapes_text() {
        let svg = line_chart(
            "a <b> chart",
            "x",
            "y",
            &[1.0, 10.0, 100.0],
            &[
                Series {
                    name: "ours".into(),
                    ys: vec![5.0, 50.0, 500.0],
                },
                Series {
                    name: "theirs".into(),
                    ys: vec![1.0, f64::NAN, 2.0],
                },
            ],
            true,
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("a &lt;b&gt; chart"));
        assert!(svg.contains(">ours<") && svg.contains(">theirs<"));
        assert_eq!(svg.matches("<path d=\"M").count(), 2);
    }
}
