//! The scenarios: connect storm + idle fleet, acked echo (closed and open loop), broadcast, polling.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use crate::listen_queue::{self, TcpCounters};
use crate::net::{Result, Ws, ack_id, event_with_ack, is_bcast, within, ws_connect};
use crate::polling::PollingClient;
use crate::servers::{CpuTime, process_cpu_secs, tree_cpu};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// A broadcast run ends after this long without a delivery (or an ack, for the sender).
const STALL: Duration = Duration::from_secs(5);

/// Connect storm: every client started at once.
#[derive(Clone, Debug, Default)]
pub struct StormResult {
    pub clients: usize,
    pub connected: usize,
    pub failed: usize,
    /// Until the last client was connected (or failed).
    pub secs: f64,
    pub first_error: Option<String>,
    /// The backlog the server listened with, as `ss` showed it.
    pub backlog: Option<u32>,
    /// How much the machine's TCP counters grew during the storm.
    pub tcp: Option<TcpCounters>,
}

/// Idle memory.
#[derive(Clone, Debug, Default)]
pub struct IdleResult {
    pub clients: usize,
    pub rss_before: u64,
    pub rss_with: u64,
    /// Connections still open when the memory was read.
    pub alive: usize,
}

impl IdleResult {
    pub fn bytes_per_connection(&self) -> f64 {
        (self.rss_with as f64 - self.rss_before as f64) / self.alive.max(1) as f64
    }
}

/// Acked echo.
#[derive(Clone, Debug, Default)]
pub struct EchoResult {
    pub clients: usize,
    pub window: usize,
    /// Closed loop (`window` acks outstanding per client): acks per second.
    pub max_acks_per_sec: f64,
    /// Open loop: offered and achieved acks per second, latency from the scheduled send time.
    pub open_rate: f64,
    pub open_acks_per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Server CPU time (user + system, its whole process tree) per acknowledgement over the
    /// closed loop, in microseconds; `None` when the server's process was not known.
    pub server_us_per_ack: Option<f64>,
    /// Of that, the system time: time in the kernel on the server's threads (its reads and
    /// writes, wake-ups; on loopback some of the TCP work for the peer's sockets too), apart
    /// from the server's own code. A median of its own over the runs, like the CPU time's, so
    /// the two may come from different runs.
    pub server_system_us_per_ack: Option<f64>,
    /// The server's CPU use over the closed loop, in cores.
    pub server_cores: Option<f64>,
    /// The load generator's own CPU use over the closed loop, in cores: near 1 (its one thread
    /// busy), the generator rather than the server sets the closed loop's rate.
    pub generator_cores: Option<f64>,
    /// Open-loop events that got no ack before the drain ended.
    pub missing: u64,
    pub failed_clients: usize,
    pub first_error: Option<String>,
    /// Runs combined into this result (see `rounds`); 1 for a single run.
    pub runs: usize,
    /// Each run's own figures, with the round it ran in (filled in by the rounds, empty for a
    /// run outside them): what the medians above hide, the machine's noise between rounds,
    /// which the targets' verdicts are read against.
    pub per_run: Vec<EchoRun>,
}

/// One echo run's closed-loop rate and open-loop p99, and its round (counted from 1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EchoRun {
    pub round: usize,
    pub acks_per_sec: f64,
    pub p99_us: u64,
}

/// Broadcast.
#[derive(Clone, Debug, Default)]
pub struct BroadcastResult {
    /// The scenario's client count (the fleet as started, without the sender).
    pub nominal: usize,
    /// Receiving connections (the sender is one of them).
    pub receivers: usize,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    /// From the first `broadcast` to the last delivery.
    pub secs: f64,
    /// The wait ended at its limit while deliveries were still arriving.
    pub timed_out: bool,
    pub error: Option<String>,
    /// Runs combined into this result (see `rounds`); 1 for a single run.
    pub runs: usize,
    /// Of combined runs: the receivers of the last one (each run on the same fleet adds the
    /// previous run's sender), and the sum of each run's lost deliveries (so one run's surplus
    /// cannot hide another's loss).
    pub receivers_last: usize,
    pub lost_in_runs: Option<u64>,
}

impl BroadcastResult {
    pub fn lost(&self) -> u64 {
        self.lost_in_runs
            .unwrap_or_else(|| self.expected.saturating_sub(self.received))
    }
    pub fn per_sec(&self) -> f64 {
        self.received as f64 / self.secs.max(1e-9)
    }
}

/// Polling echo.
#[derive(Clone, Debug, Default)]
pub struct PollingResult {
    pub clients: usize,
    pub connected: usize,
    pub round_trips_per_sec: f64,
    /// The server's CPU time (its process tree) per round trip, and the cores it used, over the
    /// counted seconds: the load generator shares the machine, so the rate alone can hide a
    /// server that needs less (bench/README.md).
    pub server_us_per_trip: Option<f64>,
    pub server_cores: Option<f64>,
    pub failed_clients: usize,
    pub first_error: Option<String>,
    /// Runs combined into this result (see `rounds`); 1 for a single run.
    pub runs: usize,
}

/// Connected WebSocket clients that answer pings and count `bcast` deliveries until stopped.
pub struct Fleet {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pub bcast: Arc<Deliveries>,
    pub alive: Arc<AtomicUsize>,
}

/// `bcast` deliveries counted over a fleet, and when the last one arrived.
pub struct Deliveries {
    count: AtomicU64,
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last delivery.
    last: AtomicU64,
}

impl Deliveries {
    fn record(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let at = self.epoch.elapsed().as_nanos() as u64;
        self.last.fetch_max(at, Ordering::Relaxed);
    }
    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    fn last(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

impl Fleet {
    fn new() -> Fleet {
        Fleet {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            bcast: Arc::new(Deliveries {
                count: AtomicU64::new(0),
                epoch: Instant::now(),
                last: AtomicU64::new(0),
            }),
            alive: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn adopt(&mut self, ws: Ws) {
        self.alive.fetch_add(1, Ordering::Relaxed);
        let stop = self.stop.subscribe();
        let (bcast, alive) = (self.bcast.clone(), self.alive.clone());
        self.tasks
            .push(tokio::spawn(idle_loop(ws, stop, bcast, alive)));
    }

    /// Closes every connection (with a reset) and waits for the tasks.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn idle_loop(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    bcast: Arc<Deliveries>,
    alive: Arc<AtomicUsize>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if is_bcast(&t) {
                        bcast.record();
                    } else if t.as_str() == "2" && ws.send(Message::text("3")).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }
    alive.fetch_sub(1, Ordering::Relaxed);
}

fn note_error(slot: &Mutex<Option<String>>, e: &dyn std::fmt::Display) {
    if let Ok(mut s) = slot.lock() {
        s.get_or_insert_with(|| e.to_string());
    }
}

fn take_error(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().ok().and_then(|mut s| s.take())
}

/// Starts `clients` WebSocket clients at once; returns them as an idle fleet with the time until
/// the last one was connected.
pub async fn storm(server: SocketAddr, clients: usize) -> (Fleet, StormResult) {
    let backlog = listen_queue::backlog(server);
    let counters_before = TcpCounters::read();
    let start = Instant::now();
    let error = Arc::new(Mutex::new(None));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let error = error.clone();
            tokio::spawn(async move {
                match within(CONNECT_TIMEOUT, ws_connect(server)).await {
                    Ok(ws) => Some((ws, start.elapsed())),
                    Err(e) => {
                        note_error(&error, &e);
                        None
                    }
                }
            })
        })
        .collect();
    let mut fleet = Fleet::new();
    let mut result = StormResult {
        clients,
        backlog,
        ..StormResult::default()
    };
    let mut last = Duration::ZERO;
    for t in tasks {
        match t.await {
            Ok(Some((ws, took))) => {
                last = last.max(took);
                result.connected += 1;
                fleet.adopt(ws);
            }
            _ => result.failed += 1,
        }
    }
    result.secs = if result.failed > 0 {
        start.elapsed().as_secs_f64()
    } else {
        last.as_secs_f64()
    };
    result.first_error = take_error(&error);
    result.tcp = TcpCounters::read()
        .zip(counters_before)
        .map(|(after, before)| after.since(before));
    (fleet, result)
}

/// One `broadcast` sender on its own connection (also a receiver), `count` events with at most
/// `window` unacknowledged; then waits for every delivery to the fleet (and the sender).
pub async fn broadcast(
    server: SocketAddr,
    fleet: &mut Fleet,
    count: u64,
    window: u64,
    max_wait: Duration,
) -> BroadcastResult {
    let mut result = BroadcastResult {
        runs: 1,
        ..BroadcastResult::default()
    };
    let mut sender = match within(CONNECT_TIMEOUT, ws_connect(server)).await {
        Ok(ws) => ws,
        Err(e) => {
            result.error = Some(format!("sender: {e}"));
            return result;
        }
    };
    let before = fleet.bcast.count();
    result.receivers = fleet.alive.load(Ordering::Relaxed) + 1;
    result.receivers_last = result.receivers;
    let start = Instant::now();
    let counter = fleet.bcast.clone();
    let send_all = async {
        let (mut next, mut acked) = (0u64, 0u64);
        while acked < count {
            while next < count && next - acked < window {
                sender
                    .send(Message::text(event_with_ack(
                        next,
                        "broadcast",
                        "\"bench-broadcast-payload\"",
                    )))
                    .await?;
                next += 1;
            }
            let text = tokio::time::timeout(STALL, crate::net::next_text(&mut sender))
                .await
                .map_err(|_| {
                    format!(
                        "{} of {count} broadcasts unacknowledged after {STALL:?} without progress",
                        next - acked
                    )
                })??;
            if is_bcast(&text) {
                counter.record();
            } else if ack_id(&text).is_some() {
                acked += 1;
            } else if text == "2" {
                sender.send(Message::text("3")).await?;
            }
        }
        Result::Ok(())
    };
    if let Err(e) = within(max_wait, send_all).await {
        result.error = Some(format!("sender: {e}"));
    }
    result.sent = count;
    fleet.adopt(sender);
    result.expected = count * result.receivers as u64;
    let deadline = start + max_wait;
    let mut last_value = 0;
    let mut last_change = Instant::now();
    loop {
        let got = fleet.bcast.count() - before;
        let now = Instant::now();
        if got != last_value {
            last_value = got;
            last_change = now;
        }
        if got >= result.expected || now.duration_since(last_change) > STALL {
            break;
        }
        if now > deadline {
            result.timed_out = true;
            break;
        }
        sleep(Duration::from_millis(2)).await;
    }
    result.received = fleet.bcast.count() - before;
    result.secs = fleet.bcast.last().duration_since(start).as_secs_f64();
    result
}

/// Connects `clients` WebSocket clients at once.
async fn connect_many(server: SocketAddr, clients: usize) -> (Vec<Ws>, Option<String>) {
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(within(CONNECT_TIMEOUT, ws_connect(server))))
        .collect();
    let mut out = Vec::with_capacity(clients);
    let mut error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(ws)) => out.push(ws),
            Ok(Err(e)) => {
                error.get_or_insert(e.to_string());
            }
            Err(e) => {
                error.get_or_insert(e.to_string());
            }
        }
    }
    (out, error)
}

/// Parameters of the echo scenario.
#[derive(Clone, Copy, Debug)]
pub struct EchoParams {
    pub clients: usize,
    /// Closed loop: acks outstanding per client.
    pub window: usize,
    pub closed: Duration,
    /// Open loop: total events per second over all clients.
    pub open_rate: f64,
    pub open: Duration,
    /// The server's process, whose CPU time is read at the start and end of the closed loop.
    pub server_pid: Option<u32>,
}

const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

const ECHO_ARG: &str = "\"echo-payload-0123456789\"";

struct ClientEcho {
    closed_acks: u64,
    open_acks: u64,
    missing: u64,
    hist: Histogram<u64>,
}

/// Acked `echo` events: first closed loop (throughput), then open loop at a fixed rate (latency
/// from the scheduled send time, so a server that falls behind is charged for the queueing).
pub async fn echo(server: SocketAddr, p: EchoParams) -> Result<EchoResult> {
    let (conns, error) = connect_many(server, p.clients).await;
    let mut result = EchoResult {
        clients: p.clients,
        window: p.window,
        open_rate: p.open_rate,
        failed_clients: p.clients - conns.len(),
        first_error: error,
        runs: 1,
        ..EchoResult::default()
    };
    let warmup = Duration::from_millis(500);
    let t0 = Instant::now() + Duration::from_millis(200);
    let closed_from = t0 + warmup;
    let t1 = closed_from + p.closed;
    let t2 = t1 + Duration::from_secs(1);
    let t3 = t2 + p.open;
    let interval = Duration::from_secs_f64(p.clients as f64 / p.open_rate);
    let n = conns.len();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let phase = interval.mul_f64(i as f64 / n.max(1) as f64);
            tokio::spawn(echo_client(
                ws,
                p.window as u64,
                [t0, closed_from, t1, t2 + phase, t3],
                interval,
            ))
        })
        .collect();
    let cpu_reader = p
        .server_pid
        .map(|pid| ServerCpu::read(pid, closed_from, t1));
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let (mut closed, mut open) = (0u64, 0u64);
    for t in tasks {
        match joined(t.await) {
            Ok(c) => {
                closed += c.closed_acks;
                open += c.open_acks;
                result.missing += c.missing;
                hist.add(&c.hist)?;
            }
            Err(e) => {
                result.failed_clients += 1;
                result.first_error.get_or_insert(e);
            }
        }
    }
    result.max_acks_per_sec = closed as f64 / p.closed.as_secs_f64();
    if let Some(cpu) = ServerCpu::measured(cpu_reader).await {
        result.server_cores = Some(cpu.cores());
        result.generator_cores = Some(cpu.generator_cores());
        result.server_us_per_ack = cpu.micros_per(closed);
        result.server_system_us_per_ack = cpu.system_micros_per(closed);
    }
    result.open_acks_per_sec = open as f64 / p.open.as_secs_f64();
    result.p50_us = hist.value_at_quantile(0.5);
    result.p99_us = hist.value_at_quantile(0.99);
    result.p999_us = hist.value_at_quantile(0.999);
    result.max_us = hist.max();
    Ok(result)
}

/// The acked `echo` event number `id`.
fn echo_event(id: u64) -> Message {
    Message::text(event_with_ack(id, "echo", ECHO_ARG))
}

async fn send_echo(ws: &mut Ws, id: u64) -> Result<()> {
    ws.send(echo_event(id)).await?;
    Ok(())
}

async fn echo_client(
    mut ws: Ws,
    window: u64,
    [t0, closed_from, t1, open_start, t3]: [Instant; 5],
    interval: Duration,
) -> Result<ClientEcho> {
    let mut out = ClientEcho {
        closed_acks: 0,
        open_acks: 0,
        missing: 0,
        hist: Histogram::new_with_bounds(1, 120_000_000, 3)?,
    };
    let mut id = 0u64;
    // Closed loop.
    sleep_until(t0).await;
    let mut outstanding = 0u64;
    while outstanding < window {
        send_echo(&mut ws, id).await?;
        id += 1;
        outstanding += 1;
    }
    // Every frame already received is answered before the answers are written, in one system call
    // (a server's acks often arrive several to a read): the generator's own writes, not the server,
    // would otherwise set the rate (see bench/ANALYSIS.md, "Echo: the generator's writes").
    let drain_end = t1 + Duration::from_millis(900);
    'closed: loop {
        let mut text = tokio::select! {
            t = crate::net::next_text(&mut ws) => t?,
            _ = sleep_until(drain_end) => break,
        };
        loop {
            if ack_id(&text).is_some() {
                outstanding -= 1;
                let now = Instant::now();
                if now >= closed_from && now < t1 {
                    out.closed_acks += 1;
                }
                if now < t1 {
                    ws.feed(echo_event(id)).await?;
                    id += 1;
                    outstanding += 1;
                } else if outstanding == 0 {
                    ws.flush().await?;
                    break 'closed;
                }
            } else if text == "2" {
                ws.feed(Message::text("3")).await?;
            }
            // A frame already read (or readable without waiting) is answered in the same write.
            match crate::net::next_text(&mut ws).now_or_never() {
                Some(t) => text = t?,
                None => break,
            }
        }
        ws.flush().await?;
    }
    // Open loop: acks of the closed loop still outstanding are ignored (ids below `first`).
    let first = id;
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut next = open_start;
    let drain_end = t3 + Duration::from_secs(5);
    loop {
        if next >= t3 && pending.is_empty() {
            break;
        }
        let sending = next < t3;
        tokio::select! {
            _ = sleep_until(next), if sending => {
                // The timer wakes up to 1 ms late (tokio's resolution): that much lateness is the
                // generator's, not the server's; beyond it (a server that does not read) counts.
                let charged_from = Instant::now().min(next + TIMER_RESOLUTION);
                send_echo(&mut ws, id).await?;
                pending.push_back((id, charged_from));
                id += 1;
                next += interval;
            }
            t = crate::net::next_text(&mut ws) => {
                let text = t?;
                if let Some(ack) = ack_id(&text) {
                    if ack >= first
                        && let Some(pos) = pending.iter().position(|(i, _)| *i == ack)
                        && let Some((_, scheduled)) = pending.remove(pos)
                    {
                        let us = Instant::now().duration_since(scheduled).as_micros() as u64;
                        out.hist.saturating_record(us.max(1));
                        out.open_acks += 1;
                    }
                } else if text == "2" {
                    ws.send(Message::text("3")).await?;
                }
            }
            _ = sleep_until(drain_end) => break,
        }
    }
    out.missing = pending.len() as u64;
    Ok(out)
}

/// Polling-only clients, each posting an acked `echo` and long-polling for the ack, one round trip
/// after the other.
pub async fn polling(
    server: SocketAddr,
    clients: usize,
    duration: Duration,
    server_pid: Option<u32>,
) -> PollingResult {
    let mut result = PollingResult {
        clients,
        runs: 1,
        ..PollingResult::default()
    };
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(within(CONNECT_TIMEOUT, PollingClient::connect(server))))
        .collect();
    let mut conns = Vec::with_capacity(clients);
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => conns.push(c),
            Ok(Err(e)) => {
                result.first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                result.first_error.get_or_insert(e.to_string());
            }
        }
    }
    result.connected = conns.len();
    result.failed_clients = clients - conns.len();
    let t0 = Instant::now() + Duration::from_millis(200);
    let t1 = t0 + duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                sleep_until(t0).await;
                let mut trips = 0u64;
                let mut id = 0u64;
                while Instant::now() < t1 {
                    c.post(&event_with_ack(id, "echo", ECHO_ARG)).await?;
                    'ack: loop {
                        for p in c.poll().await? {
                            if ack_id(&p) == Some(id) {
                                break 'ack;
                            }
                        }
                    }
                    if Instant::now() <= t1 {
                        trips += 1;
                    }
                    id += 1;
                }
                Result::Ok(trips)
            })
        })
        .collect();
    let cpu_reader = server_pid.map(|pid| ServerCpu::read(pid, t0, t1));
    let mut trips = 0u64;
    for t in tasks {
        match joined(t.await) {
            Ok(n) => trips += n,
            Err(e) => {
                result.failed_clients += 1;
                result.first_error.get_or_insert(e);
            }
        }
    }
    result.round_trips_per_sec = trips as f64 / duration.as_secs_f64();
    if let Some(cpu) = ServerCpu::measured(cpu_reader).await {
        result.server_cores = Some(cpu.cores());
        result.server_us_per_trip = cpu.micros_per(trips);
    }
    result
}

/// The server's CPU time (its process tree, from /proc) over a span of wall time, and the load
/// generator's own over the same span.
struct ServerCpu {
    cpu: CpuTime,
    generator_secs: f64,
    wall_secs: f64,
}

impl ServerCpu {
    /// Reads the CPU time of `pid`'s tree at `from` and at `to`, on a task of its own.
    fn read(pid: u32, from: Instant, to: Instant) -> tokio::task::JoinHandle<ServerCpu> {
        tokio::spawn(async move {
            sleep_until(from).await;
            let generator = std::process::id();
            let (before, generator_before, started) =
                (tree_cpu(pid), process_cpu_secs(generator), Instant::now());
            sleep_until(to).await;
            ServerCpu {
                cpu: tree_cpu(pid) - before,
                generator_secs: process_cpu_secs(generator) - generator_before,
                wall_secs: started.elapsed().as_secs_f64(),
            }
        })
    }

    /// The reading, if there is one to trust: a process of the tree that ended in between takes
    /// its time out of the sum, so no figure then.
    async fn measured(reader: Option<tokio::task::JoinHandle<ServerCpu>>) -> Option<ServerCpu> {
        let cpu = reader?.await.ok()?;
        (cpu.cpu.user >= 0.0 && cpu.cpu.system >= 0.0 && cpu.wall_secs > 0.0).then_some(cpu)
    }

    fn cores(&self) -> f64 {
        self.cpu.total() / self.wall_secs
    }

    fn generator_cores(&self) -> f64 {
        self.generator_secs / self.wall_secs
    }

    /// Microseconds of CPU per unit of work (none for no work).
    fn micros_per(&self, units: u64) -> Option<f64> {
        (units > 0).then(|| self.cpu.total() / units as f64 * 1e6)
    }

    /// Microseconds of system time per unit of work (none for no work).
    fn system_micros_per(&self, units: u64) -> Option<f64> {
        (units > 0).then(|| self.cpu.system / units as f64 * 1e6)
    }
}

/// A client task's outcome, with its panic or cancellation folded into its error.
fn joined<T, E: std::fmt::Display>(
    outcome: std::result::Result<std::result::Result<T, E>, tokio::task::JoinError>,
) -> std::result::Result<T, String> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(error.to_string()),
    }
}
