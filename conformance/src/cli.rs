//! The command line of `sockio-conformance`, also reachable from test binaries (see
//! [`serve_from_env`]).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::matrix::{self, MatrixOptions, ServerLauncher};
use crate::serve::serve;
use crate::{MATRIX_PING_TIMEOUT, Profile, ProfileOptions, RuntimeKind};

/// Set to a `serve ...` command line, it turns a test binary into a profile server (see
/// [`serve_from_env`]).
pub const SERVE_ENV: &str = "SOCKIO_CONFORMANCE_SERVE";

#[derive(Parser, Debug)]
#[command(
    name = "sockio-conformance",
    about = "Official Socket.IO clients against every sockio runtime, and sockio's test servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start one server with a test profile and keep it running. Prints `listening <port>` when
    /// it accepts connections.
    Serve(ServeArgs),
    /// Run every client × runtime × transport × scenario, print the matrix, write it as Markdown,
    /// and exit non-zero on any failure.
    Matrix(MatrixArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    #[arg(long, value_enum)]
    runtime: RuntimeKind,
    #[arg(long, value_enum)]
    profile: Profile,
    /// 0 picks a free port.
    #[arg(long)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// A message-queue manager to share clients through: `redis://...`, `unix://...` (threads)
    /// or `amqp://...` (socket-io and bench profiles).
    #[arg(long)]
    manager: Option<String>,
    /// The manager's channel (Redis) or exchange (RabbitMQ).
    #[arg(long, default_value = sockio_core::pubsub::DEFAULT_CHANNEL)]
    channel: String,
    /// Meet python-socketio's `KombuManager` rather than its `RedisManager` on a Redis
    /// `--manager` (kombu's envelope and topic; the same on RabbitMQ).
    #[arg(long, requires = "manager")]
    kombu: bool,
    /// Overrides the profile's 200 ms ping timeout (engine-io and socket-io profiles).
    #[arg(long)]
    ping_timeout_ms: Option<u64>,
    /// Overrides the engine's 10 s upgrade timeout (socket-io profile).
    #[arg(long)]
    upgrade_timeout_ms: Option<u64>,
    /// Overrides the core's 20 s binary-attachment timeout (socket-io profile).
    #[arg(long)]
    attachment_timeout_ms: Option<u64>,
    /// Accept only this origin (repeatable; engine-io and socket-io profiles). Without it every
    /// origin is accepted.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Exit when stdin closes (the matrix holds a pipe, so no server outlives it).
    #[arg(long, hide = true)]
    exit_on_stdin_close: bool,
}

#[derive(clap::Args, Debug, Clone)]
struct MatrixArgs {
    /// Only these runtimes (repeatable; default all).
    #[arg(long = "runtime", value_enum)]
    runtimes: Vec<RuntimeKind>,
    /// Only these clients by name (repeatable; default all): node-v4, node-v3, node-v2,
    /// python-sync, python-async, browser-v4.
    #[arg(long = "client")]
    clients: Vec<String>,
    /// Only these transports (repeatable; default all): polling, websocket, upgrade.
    #[arg(long = "transport")]
    transports: Vec<String>,
    /// Only these scenarios (repeatable; default all).
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Client processes at once (default 3, or SOCKIO_TESTKIT_PARALLELISM).
    #[arg(long)]
    parallelism: Option<usize>,
    /// The servers' ping timeout (default 2000 ms, see `MATRIX_PING_TIMEOUT`).
    #[arg(long)]
    ping_timeout_ms: Option<u64>,
    /// Where to write the Markdown (default: conformance/RESULTS.md for a full run, nowhere for a
    /// filtered one).
    #[arg(long)]
    results: Option<PathBuf>,
}

/// Runs the command line `args` (the first item is the program name) and returns the exit code.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Serve(args) => run_serve(args),
        Command::Matrix(args) => run_matrix(args, ServerLauncher::this_binary()),
    }
}

/// In a test binary: when [`SERVE_ENV`] holds a `serve ...` command line, runs it (never
/// returning) — the test binary is then one of the matrix's servers. Does nothing otherwise.
pub fn serve_from_env() {
    let Ok(line) = std::env::var(SERVE_ENV) else {
        return;
    };
    let args = std::iter::once("sockio-conformance".to_owned())
        .chain(line.split_whitespace().map(str::to_owned));
    let code = main_with_args(args);
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
}

/// Runs the matrix from a test binary, with servers started by `launcher`, using the command
/// line's defaults. Returns the report.
pub fn run_default_matrix(launcher: ServerLauncher) -> matrix::MatrixReport {
    matrix::run(&MatrixOptions::full(launcher))
}

fn run_serve(args: ServeArgs) -> ExitCode {
    let class = if args.kombu {
        sockio_core::pubsub::ClientManager::kombu
    } else {
        sockio_core::pubsub::ClientManager::from_url
    };
    let manager = match args.manager.as_deref().map(class) {
        None => None,
        Some(Ok(manager)) => Some(manager.channel(&args.channel)),
        Some(Err(error)) => {
            eprintln!("sockio-conformance: --manager: {error}");
            return ExitCode::from(2);
        }
    };
    if manager.is_some() && args.profile == Profile::EngineIo {
        eprintln!(
            "sockio-conformance: --manager: the engine-io profile has no Socket.IO layer to share"
        );
        return ExitCode::from(2);
    }
    if let Ok(filter) = std::env::var("SOCKIO_LOG") {
        // Server-side logs for investigating a failure, e.g. SOCKIO_LOG=sockio_server=debug
        // (tokio and smol; the threads runtime logs under sockio_threads).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mut options = ProfileOptions {
        manager,
        ..ProfileOptions::default()
    };
    if let Some(ms) = args.ping_timeout_ms {
        options.ping_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = args.upgrade_timeout_ms {
        options.upgrade_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = args.attachment_timeout_ms {
        options.attachment_timeout = Duration::from_millis(ms);
    }
    options.cors_origins = args.cors_origins.clone();
    let listener = match sockio_net::listen::bind((args.host.as_str(), args.port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "sockio-conformance: cannot bind {}:{}: {error}",
                args.host, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let port = match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(error) => {
            eprintln!("sockio-conformance: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.exit_on_stdin_close {
        std::thread::spawn(|| {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }
    // The listener is bound, so connections queue from here on: announce it.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening {port}");
    let _ = out.flush();
    match serve(args.runtime, args.profile, listener, &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sockio-conformance: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_matrix(args: MatrixArgs, launcher: ServerLauncher) -> ExitCode {
    let filtered = !(args.runtimes.is_empty()
        && args.clients.is_empty()
        && args.transports.is_empty()
        && args.scenarios.is_empty());
    let mut options = MatrixOptions::full(launcher);
    if !args.runtimes.is_empty() {
        options.runtimes = args.runtimes.clone();
    }
    if !args.clients.is_empty() {
        options
            .clients
            .retain(|c| args.clients.iter().any(|n| n == &c.name()));
        if options.clients.len() != args.clients.len() {
            eprintln!(
                "sockio-conformance: unknown client among {:?}; known: {}",
                args.clients,
                matrix::all_clients()
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return ExitCode::from(2);
        }
    }
    if !args.transports.is_empty() {
        options
            .transports
            .retain(|t| args.transports.iter().any(|n| n == t.as_str()));
        if options.transports.len() != args.transports.len() {
            eprintln!("sockio-conformance: transports are polling, websocket, upgrade");
            return ExitCode::from(2);
        }
    }
    if !args.scenarios.is_empty() {
        let known = sockio_testkit::ALL_SCENARIOS;
        if let Some(bad) = args.scenarios.iter().find(|s| !known.contains(&s.as_str())) {
            eprintln!(
                "sockio-conformance: unknown scenario {bad}; known: {}",
                known.join(", ")
            );
            return ExitCode::from(2);
        }
        options.scenarios = Some(args.scenarios.clone());
    }
    if let Some(p) = args.parallelism {
        options.parallelism = p.max(1);
    }
    options.ping_timeout = args
        .ping_timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(MATRIX_PING_TIMEOUT);
    let report = matrix::run(&options);
    println!("{}", report.text());
    let results = match (args.results, filtered) {
        (Some(path), _) => Some(path),
        (None, false) => Some(matrix::default_results_path()),
        (None, true) => None,
    };
    if let Some(path) = results {
        match std::fs::write(&path, report.markdown()) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(error) => {
                eprintln!(
                    "sockio-conformance: cannot write {}: {error}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_help_names_every_row() {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let matrix = cmd
            .find_subcommand_mut("matrix")
            .expect("matrix subcommand");
        let help = matrix
            .get_arguments()
            .find(|a| a.get_id() == "clients")
            .and_then(|a| a.get_help())
            .expect("--client help")
            .to_string();
        for client in matrix::all_clients() {
            assert!(
                help.contains(&client.name()),
                "{help} lacks {}",
                client.name()
            );
        }
    }

    #[test]
    fn parses_the_serve_command_of_issue_5() {
        let cli = Cli::try_parse_from([
            "sockio-conformance",
            "serve",
            "--runtime",
            "smol",
            "--profile",
            "engine-io",
            "--port",
            "3000",
            "--manager",
            "redis://127.0.0.1:6379",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.runtime, RuntimeKind::Smol);
        assert_eq!(args.profile, Profile::EngineIo);
        assert_eq!(args.port, 3000);
        assert_eq!(args.manager.as_deref(), Some("redis://127.0.0.1:6379"));
    }

    #[test]
    fn bad_manager_urls_and_a_manager_without_socket_io_are_refused() {
        for (profile, url) in [
            ("bench", "kafka://127.0.0.1:9092"),
            ("bench", "redis://127.0.0.1:6379?ssl_ca_certs=/ca.pem"),
            ("engine-io", "redis://127.0.0.1:6379"),
        ] {
            let code = main_with_args([
                "sockio-conformance",
                "serve",
                "--runtime",
                "tokio",
                "--profile",
                profile,
                "--port",
                "0",
                "--manager",
                url,
            ]);
            assert_eq!(code, ExitCode::from(2), "{profile} {url}");
        }
    }
}
