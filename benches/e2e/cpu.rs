//! The machine's CPU over a measured phase: `/proc/stat` (every core: the bench process, the
//! in-process service, PostgreSQL, the broker, pgbench) and `/proc/self/stat` (this process
//! alone: the clients, the service, its consumers). A rate read beside the CPU it took says
//! whether a path was bound by the cores (busy near 2 of 2) and what one of its operations
//! cost the machine, which is what bounds the ratio of two CPU-bound paths.

use std::fmt;
use std::time::Instant;

/// `USER_HZ`: the unit of `/proc/stat` and `/proc/<pid>/stat`, 100 on every Linux ABI the
/// bench runs on (x86-64 and arm64 fix it at 100).
const TICKS_PER_SECOND: f64 = 100.0;

/// The counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    busy: u64,
    idle: u64,
    own: u64,
}

impl Sample {
    /// The counters now; zero where `/proc` cannot be read (the usage then reads zero, which
    /// the printed line shows).
    pub fn now() -> Self {
        let (busy, idle) = machine().unwrap_or((0, 0));
        Self {
            at: Instant::now(),
            busy,
            idle,
            own: own().unwrap_or(0),
        }
    }

    /// What the machine spent from this sample until now, over `operations` operations.
    pub fn usage(&self, operations: f64) -> Usage {
        let now = Self::now();
        let ticks = |n: u64| n as f64 / TICKS_PER_SECOND;
        let busy = ticks(now.busy.saturating_sub(self.busy));
        let idle = ticks(now.idle.saturating_sub(self.idle));
        let own = ticks(now.own.saturating_sub(self.own));
        let per_op = |seconds: f64| {
            if operations > 0.0 {
                seconds * 1e6 / operations
            } else {
                0.0
            }
        };
        let wall = now.at.duration_since(self.at).as_secs_f64();
        Usage {
            wall_seconds: wall,
            busy_cores: if wall > 0.0 { busy / wall } else { 0.0 },
            cores: if busy + idle > 0.0 && wall > 0.0 {
                ((busy + idle) / wall).round()
            } else {
                0.0
            },
            us_per_op: per_op(busy),
            own_us_per_op: per_op(own),
        }
    }
}

/// The machine's CPU over a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub wall_seconds: f64,
    /// Busy (not idle, not waiting for I/O) cores on average over the phase.
    pub busy_cores: f64,
    /// The machine's cores (busy and idle time over wall time).
    pub cores: f64,
    /// Busy CPU microseconds, every process, per operation.
    pub us_per_op: f64,
    /// … of which this process (bench clients and the in-process service).
    pub own_us_per_op: f64,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.2} of {:.0} cores busy over {:.1} s, {:.0} µs of CPU per operation \
             ({:.0} in this process, {:.0} elsewhere)",
            self.busy_cores,
            self.cores,
            self.wall_seconds,
            self.us_per_op,
            self.own_us_per_op,
            self.us_per_op - self.own_us_per_op
        )
    }
}

/// Busy and idle ticks of every core: the `cpu` line of `/proc/stat` (`user nice system idle
/// iowait irq softirq steal …`; guest time is already in user).
fn machine() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine(&stat)
}

fn parse_machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| n.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let idle = at(3) + at(4);
    Some((busy, idle))
}

/// This process's user and system ticks (fields 14 and 15 of `/proc/self/stat`).
fn own() -> Option<u64> {
    process_ticks("/proc/self/stat")
}

/// The CPU seconds (user + system) process `pid` has used so far.
pub fn process_seconds(pid: u32) -> Option<f64> {
    Some(process_ticks(&format!("/proc/{pid}/stat"))? as f64 / TICKS_PER_SECOND)
}

fn process_ticks(path: &str) -> Option<u64> {
    parse_own(&std::fs::read_to_string(path).ok()?)
}

fn parse_own(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_machine_line_splits_into_busy_and_idle() {
        let stat = "cpu  100 2 30 400 5 6 7 8 0 0\ncpu0 50 1 15 200 2 3 3 4 0 0\n";
        assert_eq!(
            super::parse_machine(stat),
            Some((100 + 2 + 30 + 6 + 7 + 8, 405))
        );
        assert_eq!(super::parse_machine("intr 1 2 3\n"), None);
    }

    #[test]
    fn own_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (e2e (x) y) R 1 2 3 4 5 6 7 8 9 10 250 70 0 0 20 0";
        assert_eq!(super::parse_own(stat), Some(320));
        assert_eq!(super::parse_own("4242 (e2e) R 1 2"), None);
    }

    #[test]
    fn a_process_is_read_by_its_pid() {
        let seconds = super::process_seconds(std::process::id()).expect("this process");
        assert!(seconds >= 0.0);
        assert_eq!(super::process_seconds(u32::MAX), None);
    }

    #[test]
    fn a_busy_loop_shows_as_this_process_using_the_cpu() {
        let sample = super::Sample::now();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let usage = sample.usage(3.0);
        assert!(usage.cores >= 1.0, "{usage:?}");
        assert!(
            usage.busy_cores > 0.3 && usage.busy_cores <= usage.cores + 0.5,
            "{usage:?}"
        );
        // ~300 ms of this thread's CPU over 3 operations, counted in 10 ms ticks.
        assert!(usage.own_us_per_op > 50_000.0, "{usage:?}");
        assert!(
            usage.own_us_per_op <= usage.us_per_op + 20_000.0,
            "{usage:?}"
        );
    }
}
