//! The e2e bench's pure helpers: a database URL for another database, pgbench's output,
//! latency percentiles. Compiled into `tests/it` too (a `#[path]` module), so that their
//! tests run with the suite: a `harness = false` bench compiles its own `#[test]`s out.

use std::time::Duration;

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let root = match base.rfind('/') {
        Some(slash) if base[..slash].contains("//") && slash > base.find("//").unwrap_or(0) + 1 => {
            &base[..slash]
        }
        _ => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

/// `tps = N (without initial connection time)`, `latency average = N ms` and `number of
/// transactions actually processed: N`.
pub fn parse_pgbench(stdout: &str) -> Option<(f64, f64, f64)> {
    let number_after = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    Some((
        number_after("tps = ")?,
        number_after("latency average = ")?,
        number_after("number of transactions actually processed: ")?,
    ))
}

/// Latency percentile `p` (0–100) of sorted `samples`, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Requests over `threshold` in each `window` of a level, by when they were answered (offset
/// from the level's start, latency): how the slow requests spread over the level — evenly
/// (queueing) or in bursts (a stall). Formatted `slow/answered` per window.
pub fn slow_over_time(
    answers: &[(Duration, Duration)],
    window: Duration,
    threshold: Duration,
) -> String {
    let Some(last) = answers.iter().map(|(at, _)| *at).max() else {
        return String::new();
    };
    let slot = |at: Duration| (at.as_nanos() / window.as_nanos().max(1)) as usize;
    let mut windows = vec![(0usize, 0usize); slot(last) + 1];
    for (at, latency) in answers {
        let counts = &mut windows[slot(*at)];
        counts.1 += 1;
        if *latency >= threshold {
            counts.0 += 1;
        }
    }
    windows
        .iter()
        .map(|(slow, all)| format!("{slow}/{all}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn slow_requests_are_counted_in_the_window_they_were_answered() {
        let ms = std::time::Duration::from_millis;
        let answers = [
            (ms(10), ms(3)),
            (ms(200), ms(20)),
            (ms(260), ms(15)),
            (ms(600), ms(1)),
        ];
        assert_eq!(
            super::slow_over_time(&answers, ms(250), ms(15)),
            "1/2 1/1 0/1"
        );
        assert_eq!(super::slow_over_time(&[], ms(250), ms(15)), "");
    }

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database(
                "postgres://postgres@localhost/postgres?host=/var/run/postgresql",
                "x"
            ),
            "postgres://postgres@localhost/x?host=/var/run/postgresql"
        );
    }

    #[test]
    fn pgbench_output_parses() {
        let out = "number of transactions actually processed: 100\nlatency average = 0.512 ms\n\
                   initial connection time = 3.1 ms\ntps = 1953.2 (without initial connection time)\n";
        assert_eq!(super::parse_pgbench(out), Some((1953.2, 0.512, 100.0)));
        assert_eq!(super::parse_pgbench("tps = 10\n"), None);
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let ms: Vec<std::time::Duration> =
            (1..=100).map(std::time::Duration::from_millis).collect();
        assert_eq!(super::percentile(&ms, 50.0), 51.0);
        assert_eq!(super::percentile(&ms, 99.0), 99.0);
        assert_eq!(super::percentile(&ms, 100.0), 100.0);
        assert_eq!(super::percentile(&[], 99.0), 0.0);
    }
}
