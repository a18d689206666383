//! The sync plot: throughput (cmd/s, blue, left scale) and p99 latency (ms, red, right
//! scale) against concurrent clients (1, 8, 32 on a log scale), beside pgbench's commit rate
//! (grey, left scale) and pgbench committing one referral's rows per transaction (green, left
//! scale). Text (title, axes, legend) is drawn with a TrueType font read at run time —
//! `PLOT_FONT`, else DejaVu Sans where Debian puts it — through plotters' pure-Rust
//! `ab_glyph` backend; without one the plot is drawn without text (the axes are documented
//! in BENCHMARKS.md) and a warning says so. Encoded with the `png` crate.

use std::io::BufWriter;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::sync::Level;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;

/// Where a font is looked for when `PLOT_FONT` names none.
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers a font as plotters' `sans-serif`; whether one was found.
fn font() -> bool {
    let candidates = std::env::var("PLOT_FONT")
        .ok()
        .into_iter()
        .chain(FONTS.iter().map(|path| path.to_string()));
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            // plotters keeps fonts for the process: the bytes live as long.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    eprintln!("plot: no TrueType font found (set PLOT_FONT); drawing without text");
    false
}

pub fn sync_png(path: &str, levels: &[Level]) -> anyhow::Result<()> {
    let text = font();
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let max_clients = levels.iter().map(|l| l.clients).max().unwrap_or(32) as f64;
        let max_rate = levels
            .iter()
            .flat_map(|l| [l.per_second, l.pgbench_tps])
            .fold(1.0, f64::max)
            * 1.1;
        let max_p99 = levels.iter().map(|l| l.p99_ms).fold(1.0, f64::max) * 1.1;
        let x = (0.9f64..max_clients * 1.1).log_scale();
        let mut builder = ChartBuilder::on(&root);
        builder.margin(20);
        if text {
            builder
                .caption(
                    "Sync PUT referral: throughput and p99 against concurrency",
                    ("sans-serif", 20),
                )
                .x_label_area_size(40)
                .y_label_area_size(70)
                .right_y_label_area_size(60);
        }
        let mut chart = builder
            .build_cartesian_2d(x.clone(), 0.0..max_rate)
            .map_err(draw)?
            .set_secondary_coord(x, 0.0..max_p99);
        let light = RGBColor(220, 220, 220);
        let (x0, x1) = (0.9, max_clients * 1.1);
        if text {
            chart
                .configure_mesh()
                .x_desc("concurrent clients (log scale)")
                .y_desc("commits or commands per second")
                .x_label_formatter(&|clients| format!("{clients:.0}"))
                .y_label_formatter(&|rate| format!("{rate:.0}"))
                .light_line_style(WHITE)
                .bold_line_style(light)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(draw)?;
            chart
                .configure_secondary_axes()
                .y_desc("p99 latency (ms)")
                .y_label_formatter(&|ms| format!("{ms:.0}"))
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(draw)?;
        } else {
            // No mesh labels: a frame, ten horizontal grid lines (tenths of each scale) and a
            // vertical line at each client count, drawn as series.
            for step in 0..=10 {
                let y = max_rate * f64::from(step) / 10.0;
                chart
                    .draw_series(LineSeries::new([(x0, y), (x1, y)], light.stroke_width(1)))
                    .map_err(draw)?;
            }
            for level in levels {
                let x = level.clients as f64;
                chart
                    .draw_series(LineSeries::new(
                        [(x, 0.0), (x, max_rate)],
                        light.stroke_width(1),
                    ))
                    .map_err(draw)?;
            }
            chart
                .draw_series([Rectangle::new(
                    [(x0, 0.0), (x1, max_rate)],
                    BLACK.stroke_width(1),
                )])
                .map_err(draw)?;
        }
        let points = |f: fn(&Level) -> f64| -> Vec<(f64, f64)> {
            levels.iter().map(|l| (l.clients as f64, f(l))).collect()
        };
        let grey = RGBColor(150, 150, 150);
        let green = RGBColor(0, 150, 0);
        let legend = |color: RGBColor| {
            move |(x, y): (i32, i32)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3))
        };
        chart
            .draw_series(LineSeries::new(
                points(|l| l.pgbench_tps),
                grey.stroke_width(2),
            ))
            .map_err(draw)?
            .label("pgbench single-row commits/s")
            .legend(legend(grey));
        chart
            .draw_series(LineSeries::new(
                points(|l| l.same_writes_tps),
                green.stroke_width(2),
            ))
            .map_err(draw)?
            .label("pgbench, one referral's 8 rows per commit/s")
            .legend(legend(green));
        chart
            .draw_series(LineSeries::new(
                points(|l| l.per_second),
                BLUE.stroke_width(3),
            ))
            .map_err(draw)?
            .label("service PUT referral, commands/s")
            .legend(legend(BLUE));
        chart
            .draw_series(
                points(|l| l.per_second)
                    .into_iter()
                    .map(|p| Circle::new(p, 5, BLUE.filled())),
            )
            .map_err(draw)?;
        chart
            .draw_secondary_series(LineSeries::new(points(|l| l.p99_ms), RED.stroke_width(3)))
            .map_err(draw)?
            .label("service p99 latency, ms (right scale)")
            .legend(legend(RED));
        chart
            .draw_secondary_series(
                points(|l| l.p99_ms)
                    .into_iter()
                    .map(|p| TriangleMarker::new(p, 6, RED.filled())),
            )
            .map_err(draw)?;
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(draw)?;
        }
        root.present().map_err(draw)?;
    }
    let file = std::fs::File::create(path).with_context(|| format!("creating {path}"))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(())
}

fn draw<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {error:?}")
}
