//! Several runs of a scenario reported as one result. This machine's rates drift by up to ±30%
//! from minute to minute (bench/ANALYSIS.md, "The machine"), and a single run per server let a
//! target flip between two reports of the same code; so the rate scenarios run in rounds that
//! alternate between the servers, and each server's runs are combined here.

use std::time::Duration;

use crate::scenarios::{BroadcastResult, EchoResult, PollingResult};

/// A broadcast is run again (up to the rounds asked for) only while its runs so far took less
/// than this: one run of the slowest peer takes minutes, and repeating it would measure nothing
/// the first run did not.
pub const REPEAT_BUDGET: Duration = Duration::from_secs(10);

/// The median; the mean of the middle two for an even count. `None` for no values.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn median_us(values: impl Iterator<Item = u64>) -> u64 {
    median(values.map(|v| v as f64).collect()).map_or(0, |m| m.round() as u64)
}

/// Echo runs of one client count: the median of each rate, latency percentile and CPU figure
/// (of the runs that have one), the largest
/// maximum, every unanswered event, the most failed clients of a run.
pub fn echo(runs: &[EchoResult]) -> Option<EchoResult> {
    let first = runs.first()?;
    Some(EchoResult {
        clients: first.clients,
        window: first.window,
        open_rate: first.open_rate,
        max_acks_per_sec: median(runs.iter().map(|r| r.max_acks_per_sec).collect())?,
        open_acks_per_sec: median(runs.iter().map(|r| r.open_acks_per_sec).collect())?,
        p50_us: median_us(runs.iter().map(|r| r.p50_us)),
        p99_us: median_us(runs.iter().map(|r| r.p99_us)),
        p999_us: median_us(runs.iter().map(|r| r.p999_us)),
        max_us: runs.iter().map(|r| r.max_us).max().unwrap_or(0),
        server_us_per_ack: median(runs.iter().filter_map(|r| r.server_us_per_ack).collect()),
        server_system_us_per_ack: median(
            runs.iter()
                .filter_map(|r| r.server_system_us_per_ack)
                .collect(),
        ),
        server_cores: median(runs.iter().filter_map(|r| r.server_cores).collect()),
        generator_cores: median(runs.iter().filter_map(|r| r.generator_cores).collect()),
        missing: runs.iter().map(|r| r.missing).sum(),
        failed_clients: runs.iter().map(|r| r.failed_clients).max().unwrap_or(0),
        first_error: runs.iter().find_map(|r| r.first_error.clone()),
        runs: runs.iter().map(|r| r.runs).sum(),
        per_run: runs
            .iter()
            .flat_map(|r| r.per_run.iter().cloned())
            .collect(),
    })
}

/// Broadcast runs: their totals, every run's lost deliveries added up (one run's surplus cannot
/// hide another's loss), and the rate of all deliveries over all the runs' time.
pub fn broadcast(runs: &[BroadcastResult]) -> Option<BroadcastResult> {
    let first = runs.first()?;
    Some(BroadcastResult {
        nominal: first.nominal,
        receivers: first.receivers,
        receivers_last: runs.last().map_or(first.receivers, |r| r.receivers_last),
        lost_in_runs: Some(runs.iter().map(BroadcastResult::lost).sum()),
        sent: runs.iter().map(|r| r.sent).sum(),
        expected: runs.iter().map(|r| r.expected).sum(),
        received: runs.iter().map(|r| r.received).sum(),
        secs: runs.iter().map(|r| r.secs).sum(),
        timed_out: runs.iter().any(|r| r.timed_out),
        error: runs.iter().find_map(|r| r.error.clone()),
        runs: runs.iter().map(|r| r.runs).sum(),
    })
}

/// Polling runs: the median rate and CPU figures, the fewest connected and the most failed clients of a run.
pub fn polling(runs: &[PollingResult]) -> Option<PollingResult> {
    let first = runs.first()?;
    Some(PollingResult {
        clients: first.clients,
        connected: runs.iter().map(|r| r.connected).min().unwrap_or(0),
        round_trips_per_sec: median(runs.iter().map(|r| r.round_trips_per_sec).collect())?,
        server_us_per_trip: median(runs.iter().filter_map(|r| r.server_us_per_trip).collect()),
        server_cores: median(runs.iter().filter_map(|r| r.server_cores).collect()),
        failed_clients: runs.iter().map(|r| r.failed_clients).max().unwrap_or(0),
        first_error: runs.iter().find_map(|r| r.first_error.clone()),
        runs: runs.iter().map(|r| r.runs).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::EchoRun;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![7.0]), Some(7.0));
        assert_eq!(median(vec![9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(vec![4.0, 1.0, 10.0, 2.0]), Some(3.0));
    }

    #[test]
    fn an_outlying_echo_run_moves_neither_the_rate_nor_the_p99() {
        let run = |round: usize, rate: f64, p99: u64, missing: u64| EchoResult {
            clients: 100,
            max_acks_per_sec: rate,
            open_acks_per_sec: 4_000.0,
            p99_us: p99,
            max_us: p99 * 2,
            server_us_per_ack: (p99 < 9_000).then_some(7.0),
            server_system_us_per_ack: Some(p99 as f64 / 1_000.0),
            missing,
            runs: 1,
            per_run: vec![EchoRun {
                round,
                acks_per_sec: rate,
                p99_us: p99,
            }],
            ..EchoResult::default()
        };
        let combined = echo(&[
            run(1, 150_000.0, 1_200, 0),
            run(2, 60_000.0, 9_000, 2),
            run(3, 140_000.0, 1_100, 0),
        ])
        .expect("three runs");
        assert_eq!(combined.max_acks_per_sec, 140_000.0);
        assert_eq!(combined.p99_us, 1_200);
        assert_eq!(combined.max_us, 18_000);
        assert_eq!(combined.server_us_per_ack, Some(7.0));
        assert_eq!(combined.server_system_us_per_ack, Some(1.2));
        assert_eq!(combined.server_cores, None);
        assert_eq!(combined.missing, 2);
        assert_eq!(combined.runs, 3);
        let rounds: Vec<(usize, f64, u64)> = combined
            .per_run
            .iter()
            .map(|r| (r.round, r.acks_per_sec, r.p99_us))
            .collect();
        assert_eq!(
            rounds,
            [
                (1, 150_000.0, 1_200),
                (2, 60_000.0, 9_000),
                (3, 140_000.0, 1_100)
            ]
        );
    }

    #[test]
    fn a_delivery_lost_in_any_broadcast_run_is_reported() {
        let run = |received: u64, secs: f64| BroadcastResult {
            nominal: 1_000,
            receivers: 1_001,
            sent: 10,
            expected: 10_010,
            received,
            secs,
            runs: 1,
            ..BroadcastResult::default()
        };
        let combined =
            broadcast(&[run(10_010, 1.0), run(10_009, 1.0), run(10_011, 2.0)]).expect("three runs");
        // The third run's surplus does not hide the second's loss.
        assert_eq!(combined.lost(), 1);
        assert_eq!(combined.runs, 3);
        assert!((combined.per_sec() - 30_030.0 / 4.0).abs() < 1e-6);
    }

    #[test]
    fn polling_runs_give_the_median_rate_and_cpu_of_the_runs_that_measured_it() {
        let run = |rate: f64, us: Option<f64>| PollingResult {
            clients: 10,
            connected: 10,
            round_trips_per_sec: rate,
            server_us_per_trip: us,
            server_cores: us.map(|_| 1.0),
            runs: 1,
            ..PollingResult::default()
        };
        let combined = polling(&[
            run(300.0, Some(9.0)),
            run(100.0, None),
            run(200.0, Some(5.0)),
        ])
        .expect("three runs");
        assert_eq!(combined.round_trips_per_sec, 200.0);
        // A run whose CPU time could not be read does not count as zero.
        assert_eq!(combined.server_us_per_trip, Some(7.0));
        assert_eq!(combined.runs, 3);
    }

    #[test]
    fn no_runs_combine_to_nothing() {
        assert!(echo(&[]).is_none());
        assert!(broadcast(&[]).is_none());
        assert!(polling(&[]).is_none());
    }
}
