//! The message brokers of the machine, seen from a test: where they are (from the environment),
//! whether a test must fail or may skip without them, and what they say about subscribers —
//! asked on plain sockets or through the broker's own CLI, so checks do not rely on the code under
//! test.
//!
//! * `SOCKIO_REDIS_URL` (default `redis://127.0.0.1:6379`), `SOCKIO_AMQP_URL` (default
//!   `amqp://guest:guest@127.0.0.1:5672//`), `SOCKIO_POSTGRES_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`, for the custom client manager's tests);
//! * `SOCKIO_REQUIRE_BROKERS=1` (CI) turns a missing broker into a failure instead of a skip;
//! * `SOCKIO_RABBITMQCTL` overrides the `rabbitmqctl` command (e.g. `docker exec rabbit rabbitmqctl`).

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Redis URL under test.
pub fn redis_url() -> String {
    std::env::var("SOCKIO_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The RabbitMQ URL under test.
pub fn amqp_url() -> String {
    std::env::var("SOCKIO_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672//".to_owned())
}

/// The PostgreSQL URL under test (the custom client manager's tests use its LISTEN/NOTIFY).
pub fn postgres_url() -> String {
    std::env::var("SOCKIO_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh channel (exchange) name, so concurrent tests never hear each other.
pub fn fresh_channel(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// `host:port` of the broker at `url` when it accepts connections; `None` (the test skips) when
/// it does not and brokers are not required; a panic when they are.
pub fn reachable(url: &str) -> Option<String> {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let addr = authority
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    match std::net::TcpStream::connect(&addr) {
        Ok(_) => Some(addr),
        Err(error) if std::env::var("SOCKIO_REQUIRE_BROKERS").as_deref() == Ok("1") => {
            panic!("the broker at {url} is required (SOCKIO_REQUIRE_BROKERS=1): {error}")
        }
        Err(error) => {
            eprintln!("skipped: no broker at {url} ({error})");
            None
        }
    }
}

/// How many connections Redis at `addr` (`host:port`, or the path of a Unix socket) has
/// subscribed to `channel` (`PUBSUB NUMSUB`).
pub fn redis_subscribers(addr: &str, channel: &str) -> Result<i64, String> {
    redis_count(addr, &[b"PUBSUB", b"NUMSUB", channel.as_bytes()])
}

/// Publishes `message` on `channel` of Redis at `addr`, as another server would; how many
/// subscribers got it.
pub fn redis_publish(addr: &str, channel: &str, message: &[u8]) -> Result<i64, String> {
    redis_count(addr, &[b"PUBLISH", channel.as_bytes(), message])
}

/// Connects to Redis at `addr` (`host:port`, or the path of a Unix socket) and sends one command
/// as a RESP array of bulk strings; the connection, to read the answer from.
fn send_redis_command(addr: &str, args: &[&[u8]]) -> Result<Box<dyn ReadWrite>, String> {
    let mut stream: Box<dyn ReadWrite> = if addr.starts_with('/') {
        Box::new(std::os::unix::net::UnixStream::connect(addr).map_err(|e| e.to_string())?)
    } else {
        Box::new(std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?)
    };
    let mut command = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        command.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        command.extend_from_slice(arg);
        command.extend_from_slice(b"\r\n");
    }
    stream.write_all(&command).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// A Redis user made for one test (`ACL SETUSER`, password `pw`, every key and channel, every
/// command but `denied`), deleted when dropped.
pub struct RedisAclUser {
    addr: String,
    name: String,
}

impl RedisAclUser {
    /// Creates the user `name` on Redis at `addr` (`host:port`).
    pub fn create(addr: &str, name: &str, denied: &str) -> Result<RedisAclUser, String> {
        let denied = format!("-{denied}");
        let answer = redis_command(
            addr,
            &[
                b"ACL",
                b"SETUSER",
                name.as_bytes(),
                b"reset",
                b"on",
                b">pw",
                b"~*",
                b"&*",
                b"+@all",
                denied.as_bytes(),
            ],
        )?;
        if answer != "OK" {
            return Err(format!("ACL SETUSER: {answer}"));
        }
        Ok(RedisAclUser {
            addr: addr.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `redis://` URL logging in as this user.
    pub fn url(&self) -> String {
        format!("redis://{}:pw@{}", self.name, self.addr)
    }

    /// The names of this user's connections (`CLIENT LIST`), unnamed ones as "".
    pub fn connection_names(&self) -> Result<Vec<String>, String> {
        let list = redis_command(&self.addr, &[b"CLIENT", b"LIST"])?;
        let user = format!("user={}", self.name);
        Ok(list
            .lines()
            .filter(|line| line.split(' ').any(|field| field == user))
            .map(|line| {
                line.split(' ')
                    .find_map(|field| field.strip_prefix("name="))
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect())
    }
}

impl Drop for RedisAclUser {
    fn drop(&mut self) {
        // Errors ignored: a panic here, while a failing test unwinds, would abort the run.
        let _ = redis_command(&self.addr, &[b"ACL", b"DELUSER", self.name.as_bytes()]);
    }
}

/// Runs a command whose answer holds one integer (`PUBLISH`, `PUBSUB NUMSUB`), on a connection
/// of its own, and returns that integer.
fn redis_count(addr: &str, args: &[&[u8]]) -> Result<i64, String> {
    let mut stream = send_redis_command(addr, args)?;
    // `:count`, or `*2 $len channel :count`: the count is the line that starts with `:`.
    let mut reply = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        let read = stream.read(&mut buffer).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("Redis closed the connection".to_owned());
        }
        reply.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&reply);
        if let Some(count) = text
            .split("\r\n")
            .find_map(|line| line.strip_prefix(':'))
            .and_then(|n| n.parse().ok())
        {
            return Ok(count);
        }
        if reply.len() > 64 * 1024 {
            return Err(format!("unexpected reply: {text}"));
        }
    }
}

/// Runs one command on Redis at `addr` (`host:port`) on a connection of its own; its answer
/// when it is a status, an error (with its `-`), an integer or a bulk string (`ACL SETUSER`,
/// `CLIENT LIST`), as text.
pub fn redis_command(addr: &str, args: &[&[u8]]) -> Result<String, String> {
    let mut stream = send_redis_command(addr, args)?;
    let mut reply = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = stream.read(&mut buffer).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("Redis closed the connection".to_owned());
        }
        reply.extend_from_slice(&buffer[..read]);
        let Some(end) = reply.windows(2).position(|pair| pair == b"\r\n") else {
            continue;
        };
        if end == 0 {
            return Err("an empty reply line".to_owned());
        }
        let line = String::from_utf8_lossy(&reply[1..end]).into_owned();
        match reply[0] {
            b'+' | b':' => return Ok(line),
            b'-' => return Ok(format!("-{line}")),
            b'$' if line == "-1" => return Ok(String::new()),
            b'$' => {
                let len: usize = line.parse().map_err(|_| format!("bulk length {line:?}"))?;
                if reply.len() >= end + 2 + len {
                    return Ok(String::from_utf8_lossy(&reply[end + 2..end + 2 + len]).into_owned());
                }
            }
            other => return Err(format!("unexpected reply type {:?}", other as char)),
        }
    }
}

/// Subscribes to `channel` of Redis at `addr` (`host:port`) on a thread of its own, and counts
/// what was published there mentioning `marker` until `window` has passed. Subscribed once
/// `PUBSUB NUMSUB` counts it (the caller waits for that before publishing).
pub fn count_redis_messages(
    addr: &str,
    channel: &str,
    marker: &str,
    window: Duration,
) -> std::thread::JoinHandle<usize> {
    let watch = RedisWatch::subscribe(addr, channel);
    let marker = marker.to_owned();
    std::thread::spawn(move || watch.count_until(&marker, window))
}

/// A subscription to one channel of Redis, kept apart from the code under test, that remembers
/// everything published there since.
pub struct RedisWatch {
    stream: std::net::TcpStream,
    seen: Vec<u8>,
}

impl RedisWatch {
    /// Subscribes to `channel` of Redis at `addr` (`host:port`). Subscribed once `PUBSUB NUMSUB`
    /// counts it (the caller waits for that before publishing).
    pub fn subscribe(addr: &str, channel: &str) -> RedisWatch {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to Redis");
        let command = format!(
            "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        stream.write_all(command.as_bytes()).expect("SUBSCRIBE");
        RedisWatch {
            stream,
            seen: Vec::new(),
        }
    }

    /// How many of the messages seen mention `marker`.
    fn count(&self, marker: &str) -> usize {
        String::from_utf8_lossy(&self.seen).matches(marker).count()
    }

    /// Reads what is published until `deadline` or until `done` holds of it.
    fn read_until(&mut self, deadline: Instant, done: impl Fn(&Self) -> bool) {
        let mut buffer = [0u8; 64 * 1024];
        while !done(self) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("timeout");
            match self.stream.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => self.seen.extend_from_slice(&buffer[..read]),
                Err(_) => {}
            }
        }
    }

    /// Waits until a message mentioning `marker` was published (true), for `timeout` at most.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> bool {
        self.read_until(Instant::now() + timeout, |watch| watch.count(marker) > 0);
        self.count(marker) > 0
    }

    /// Reads what is published until `window` has passed, then counts the messages seen since the
    /// subscription that mention `marker`.
    pub fn count_until(mut self, marker: &str, window: Duration) -> usize {
        self.read_until(Instant::now() + window, |_| false);
        self.count(marker)
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A Redis server of its own on a Unix socket (the machine's listens on TCP only), for the
/// `unix://` URLs: `redis-server` started by the test, stopped when dropped.
pub struct UnixRedis {
    child: std::process::Child,
    path: std::path::PathBuf,
}

impl UnixRedis {
    /// Starts one; `None` (skip) when `redis-server` is not installed and brokers are not
    /// required, a panic when they are.
    pub fn start() -> Option<UnixRedis> {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with more of `redis-server`'s options (`["--name", "value"]`).
    pub fn start_with(options: &[&str]) -> Option<UnixRedis> {
        let path = std::env::temp_dir().join(format!("{}.sock", fresh_channel("sockio-redis")));
        let _ = std::fs::remove_file(&path);
        let spawned = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&path)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(options)
            .stdout(std::process::Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) if std::env::var("SOCKIO_REQUIRE_BROKERS").as_deref() == Ok("1") => {
                panic!("redis-server is required (SOCKIO_REQUIRE_BROKERS=1): {error}")
            }
            Err(error) => {
                eprintln!("skipped: cannot start redis-server ({error})");
                return None;
            }
        };
        let redis = UnixRedis { child, path };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&redis.path).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server never listened on {}",
                redis.path.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(redis)
    }

    /// `unix:///path/to/socket`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// The socket's path (what [`redis_subscribers`] takes for it).
    pub fn path(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for UnixRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Runs the broker's CLI (`rabbitmqctl`, or `SOCKIO_RABBITMQCTL`) with `args`; its stdout.
pub fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let command = std::env::var("SOCKIO_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".to_owned());
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or("rabbitmqctl");
    let output = Command::new(program)
        .args(words)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {command}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The vhost of an `amqp://` URL (`/` when none; `%2f` is `/`).
pub fn vhost(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.split_once('/') {
        None | Some((_, "")) => "/".to_owned(),
        Some((_, vhost)) => vhost.replace("%2f", "/").replace("%2F", "/"),
    }
}

/// How many queues RabbitMQ has bound to `exchange` in `vhost`.
pub fn rabbitmq_bindings(vhost: &str, exchange: &str) -> Result<usize, String> {
    bound_queues(vhost, exchange).map(|queues| queues.len())
}

/// Waits until `count` servers listen on `channel` of the broker at `url` (Redis subscribers or
/// RabbitMQ queues bound to the exchange); an error after about 30 s.
pub fn wait_for_listeners(
    url: &str,
    addr: &str,
    channel: &str,
    count: usize,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = if url.starts_with("amqp") {
            rabbitmq_bindings(&vhost(url), channel)?
        } else {
            usize::try_from(redis_subscribers(addr, channel)?).unwrap_or(0)
        };
        if now >= count {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("{now} of {count} servers listen on {channel}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The names of the queues RabbitMQ has bound to `exchange` in `vhost`, sorted.
pub fn bound_queues(vhost: &str, exchange: &str) -> Result<Vec<String>, String> {
    let listing = rabbitmqctl(&[
        "list_bindings",
        "-q",
        "-p",
        vhost,
        "source_name",
        "destination_name",
        "destination_kind",
    ])?;
    let mut queues: Vec<String> = listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (source, destination, kind) = (fields.next()?, fields.next()?, fields.next()?);
            (source == exchange && kind == "queue").then(|| destination.to_owned())
        })
        .collect();
    queues.sort();
    Ok(queues)
}

/// A RabbitMQ policy that makes one queue refuse every message routed to it (`max-length` 0,
/// `overflow: reject-publish`: a full queue that rejects publishes, which RabbitMQ answers with
/// basic.nack), cleared when dropped.
pub struct RejectingPolicy {
    vhost: String,
    name: String,
    queue: String,
    cleared: bool,
}

impl RejectingPolicy {
    /// Applies the policy to `queue` of `vhost`, and waits until the queue has it.
    pub fn apply(vhost: &str, queue: &str) -> Result<RejectingPolicy, String> {
        let policy = RejectingPolicy {
            vhost: vhost.to_owned(),
            name: format!("reject-{queue}"),
            queue: queue.to_owned(),
            cleared: false,
        };
        let mut pattern = String::from("^");
        for c in queue.chars() {
            if "\\^$.|?*+()[]{}".contains(c) {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('$');
        rabbitmqctl(&[
            "set_policy",
            "-p",
            vhost,
            "--apply-to",
            "queues",
            "--priority",
            "100",
            &policy.name,
            &pattern,
            r#"{"max-length":0,"overflow":"reject-publish"}"#,
        ])?;
        policy.wait_until(true)?;
        Ok(policy)
    }

    /// Clears the policy, and waits until the queue's record is rid of it.
    pub fn clear(mut self) -> Result<(), String> {
        rabbitmqctl(&["clear_policy", "-p", &self.vhost, &self.name])?;
        self.cleared = true;
        self.wait_until(false)
    }

    /// Waits until the queue's record has the policy (`applied`) or not: a policy reaches it
    /// shortly after the command returns. The queue itself hears of it a moment later still, so
    /// a test retries what it expects of the queue.
    fn wait_until(&self, applied: bool) -> Result<(), String> {
        for _ in 0..60 {
            let listing = rabbitmqctl(&["list_queues", "-p", &self.vhost, "-s", "name", "policy"])?;
            let has = listing.lines().any(|line| {
                line.split('\t')
                    .eq([self.queue.as_str(), self.name.as_str()])
            });
            if has == applied {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(format!(
            "the policy {} never changed on {}",
            self.name, self.queue
        ))
    }
}

impl Drop for RejectingPolicy {
    fn drop(&mut self) {
        if self.cleared {
            return;
        }
        // Errors ignored: a panic here, while a failing test unwinds, would abort the run.
        let _ = rabbitmqctl(&["clear_policy", "-p", &self.vhost, &self.name]);
    }
}

/// The Erlang pids (as `close_connection` wants them) of the RabbitMQ connections whose
/// client-provided name mentions `exchange` (sockio names its connections `sockio subscriber
/// <exchange> <queue>` and `sockio publisher <exchange>`).
pub fn rabbitmq_connections(exchange: &str) -> Result<Vec<String>, String> {
    let listing = rabbitmqctl(&["list_connections", "-s", "pid", "client_properties"])?;
    Ok(listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, properties)| properties.contains(&format!(" {exchange}")))
        .map(|(pid, _)| pid.to_owned())
        .collect())
}

/// The bytes Redis sends a subscriber sockio has just set up on `channel` (the `+OK` of its
/// `CLIENT SETNAME`, the subscription's confirmation) followed by the published `message`.
pub fn redis_subscriber_reads(channel: &str, message: &str) -> usize {
    let (c, m) = (channel.len(), message.len());
    format!(
        "+OK\r\n*3\r\n$9\r\nsubscribe\r\n${c}\r\n{channel}\r\n:1\r\n\
         *3\r\n$7\r\nmessage\r\n${c}\r\n{channel}\r\n${m}\r\n{message}\r\n"
    )
    .len()
}
