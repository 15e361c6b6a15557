//! Line charts of the last five minutes of samples, drawn as inline SVG on the server.

use maud::{Markup, html};

use super::Ctx;
use crate::dashboard::text::T;
use crate::series::Sample;

type Pick = fn(&Sample) -> Option<f64>;

pub fn charts(ctx: &Ctx, samples: &[Sample], now: u64) -> Markup {
    html! {
        div.charts {
            (chart(ctx, ctx.t(T::RequestsPerSec), samples, &[("req/s", "s1", |s: &Sample| Some(s.requests_per_sec))], now))
            (chart(ctx, ctx.t(T::LatencyMs), samples, &[
                ("p50", "s1", (|s: &Sample| s.p50) as Pick),
                ("p95", "s2", |s: &Sample| s.p95),
                ("p99", "s3", |s: &Sample| s.p99),
            ], now))
            (chart(ctx, &format!("{} (KiB)", ctx.t(T::Memory)), samples, &[("KiB", "s1", |s: &Sample| Some(s.memory as f64 / 1024.0))], now))
        }
    }
}

/// A line chart of the last five minutes as inline SVG (colours come from the stylesheet).
pub(super) fn chart(
    ctx: &Ctx,
    title: &str,
    samples: &[Sample],
    lines: &[(&str, &str, Pick)],
    now: u64,
) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 140.0;
    let span = (crate::series::KEEP as u64) * 1000;
    let start = now.saturating_sub(span);
    let max = samples
        .iter()
        .flat_map(|s| lines.iter().filter_map(|(_, _, pick)| pick(s)))
        .fold(0.0f64, f64::max);
    let top = nice(max);
    let x = |t: u64| (t.saturating_sub(start) as f64 / span as f64 * W).clamp(0.0, W);
    let y = |v: f64| H - (v / top * (H - 8.0));
    let latest: Vec<String> = lines
        .iter()
        .map(|(label, _, pick)| {
            let v = samples.last().and_then(pick);
            format!("{label} {}", v.map_or("—".into(), |v| format!("{v:.1}")))
        })
        .collect();
    let summary = format!("{title}: {}", latest.join(", "));
    html! {
        figure.chart {
            figcaption { (title) span.latest { (latest.join(" · ")) } }
            svg viewBox={ "0 0 " (W) " " (H + 22.0) } role="img" aria-label=(summary) {
                line.axis x1="0" y1=(H) x2=(W) y2=(H) {}
                line.grid x1="0" y1=(y(top / 2.0)) x2=(W) y2=(y(top / 2.0)) {}
                text.label x="4" y="18" { (fmt_num(top)) }
                text.label x="4" y=(H + 18.0) { (ctx.t(T::Last5Min)) }
                text.label x=(W - 4.0) y=(H + 18.0) text-anchor="end" { (ctx.t(T::Now)) }
                @for (_, class, pick) in lines {
                    @for seg in segments(samples, *pick) {
                        polyline.(class) points=(seg.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect::<Vec<_>>().join(" ")) {}
                    }
                }
            }
            @if lines.len() > 1 {
                ul.legend { @for (label, class, _) in lines { li.(class) { (label) } } }
            }
        }
    }
}

/// Runs of consecutive samples that have a value (a gap breaks the line).
fn segments(samples: &[Sample], pick: Pick) -> Vec<Vec<(u64, f64)>> {
    let mut out: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut run = Vec::new();
    for s in samples {
        match pick(s) {
            Some(v) => run.push((s.time, v)),
            None if !run.is_empty() => out.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    // A single point draws nothing: make it a short flat line.
    for seg in &mut out {
        if seg.len() == 1 {
            let (t, v) = seg[0];
            seg.insert(0, (t.saturating_sub(1000), v));
        }
    }
    out
}

/// A round number at or above `v` for the top of a chart.
fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_tops_are_round_numbers_at_or_above_the_peak() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(3.2), 5.0);
        assert_eq!(nice(10.0), 10.0);
        assert_eq!(nice(11.0), 20.0);
        assert_eq!(nice(0.3), 0.5);
    }
}
