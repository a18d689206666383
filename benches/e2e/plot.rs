//! The sync plot: throughput (cmd/s, blue, left scale) and p99 latency (ms, red, right
//! scale) against concurrent clients (1, 8, 32 on a log scale), beside pgbench's commit rate
//! (grey, left scale) and pgbench committing one referral's rows per transaction (green, left
//! scale). plotters' bitmap backend without a font (a TTF stack would pull
//! font-kit and system libraries), so the PNG has no text: the axes are documented in
//! BENCHMARKS.md. Encoded with the `png` crate.

use std::io::BufWriter;

use anyhow::Context;
use plotters::prelude::*;

use crate::sync::Level;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;

pub fn sync_png(path: &str, levels: &[Level]) -> anyhow::Result<()> {
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
        let mut chart = ChartBuilder::on(&root)
            .margin(20)
            .build_cartesian_2d(x.clone(), 0.0..max_rate)
            .map_err(draw)?
            .set_secondary_coord(x, 0.0..max_p99);
        // No fonts, so no mesh labels: a frame, ten horizontal grid lines (tenths of each
        // scale) and a vertical line at each client count, drawn as series.
        let light = RGBColor(220, 220, 220);
        let (x0, x1) = (0.9, max_clients * 1.1);
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
        let points = |f: fn(&Level) -> f64| -> Vec<(f64, f64)> {
            levels.iter().map(|l| (l.clients as f64, f(l))).collect()
        };
        chart
            .draw_series(LineSeries::new(
                points(|l| l.pgbench_tps),
                RGBColor(150, 150, 150).stroke_width(2),
            ))
            .map_err(draw)?;
        chart
            .draw_series(LineSeries::new(
                points(|l| l.same_writes_tps),
                RGBColor(0, 150, 0).stroke_width(2),
            ))
            .map_err(draw)?;
        chart
            .draw_series(LineSeries::new(
                points(|l| l.per_second),
                BLUE.stroke_width(3),
            ))
            .map_err(draw)?;
        chart
            .draw_series(
                points(|l| l.per_second)
                    .into_iter()
                    .map(|p| Circle::new(p, 5, BLUE.filled())),
            )
            .map_err(draw)?;
        chart
            .draw_secondary_series(LineSeries::new(points(|l| l.p99_ms), RED.stroke_width(3)))
            .map_err(draw)?;
        chart
            .draw_secondary_series(
                points(|l| l.p99_ms)
                    .into_iter()
                    .map(|p| TriangleMarker::new(p, 6, RED.filled())),
            )
            .map_err(draw)?;
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
