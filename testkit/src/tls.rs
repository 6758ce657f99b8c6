//! Brokers behind TLS for the `rediss://` and `amqps://` tests: a certificate authority made up
//! for the test run, a `redis-server` with a TLS port (Redis's own TLS, OpenSSL), and a TLS
//! terminator (`socat`, OpenSSL) in front of the machine's RabbitMQ, whose own configuration a
//! test cannot change.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::brokers::fresh_channel;

/// PEM files in a temporary directory, removed on drop: a CA, a server certificate it signed for
/// `localhost` and `127.0.0.1`, and a second CA that signed nothing (for "unknown issuer").
pub struct TestCertificates {
    dir: PathBuf,
}

impl TestCertificates {
    pub fn generate() -> Result<TestCertificates, String> {
        let dir = std::env::temp_dir().join(fresh_channel("sockio-tls"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let certificates = TestCertificates { dir };
        let fail = |e: rcgen::Error| format!("generating a test certificate: {e}");

        let (ca_params, ca_key) = certificate_authority("sockio test CA").map_err(fail)?;
        let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().map_err(fail)?;
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(fail)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server = server_params
            .signed_by(&server_key, &issuer)
            .map_err(fail)?;
        let (other_params, other_key) = certificate_authority("unrelated CA").map_err(fail)?;
        let other = other_params.self_signed(&other_key).map_err(fail)?;

        certificates.write("ca.pem", &ca.pem())?;
        certificates.write("server.pem", &server.pem())?;
        certificates.write("server.key", &server_key.serialize_pem())?;
        certificates.write("other-ca.pem", &other.pem())?;
        Ok(certificates)
    }

    fn write(&self, name: &str, pem: &str) -> Result<(), String> {
        let path = self.dir.join(name);
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The CA that signed the server certificate.
    pub fn ca_file(&self) -> String {
        self.path("ca.pem")
    }

    /// A CA that did not sign the server certificate.
    pub fn other_ca_file(&self) -> String {
        self.path("other-ca.pem")
    }

    pub fn server_certificate(&self) -> String {
        self.path("server.pem")
    }

    pub fn server_key(&self) -> String {
        self.path("server.key")
    }
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn certificate_authority(name: &str) -> Result<(CertificateParams, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    Ok((params, key))
}

/// A `redis-server` listening with TLS on one port and in plain text on another (for the
/// tests' own probes, such as counting subscribers), killed on drop.
pub struct TlsRedis {
    child: Child,
    plain_port: u16,
    tls_port: u16,
    certificates: TestCertificates,
}

impl TlsRedis {
    /// Starts one; `None` (skip) when `redis-server` cannot start and brokers are not required,
    /// a panic when they are.
    pub fn start() -> Option<TlsRedis> {
        let certificates = TestCertificates::generate().unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..ATTEMPTS {
            let [plain_port, tls_port] = free_ports();
            let spawned = Command::new("redis-server")
                .args(["--port", &plain_port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--tls-port", &tls_port.to_string()])
                .args(["--tls-cert-file", &certificates.server_certificate()])
                .args(["--tls-key-file", &certificates.server_key()])
                .args(["--tls-ca-cert-file", &certificates.ca_file()])
                .args(["--tls-auth-clients", "no"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(error) => {
                    return skip_or_panic(&format!("cannot start redis-server ({error})"));
                }
            };
            let mut child = Reaped(Some(child));
            if wait_for_port(child.child(), plain_port, "redis-server")
                && wait_for_port(child.child(), tls_port, "redis-server's TLS port")
            {
                return Some(TlsRedis {
                    child: child.take(),
                    plain_port,
                    tls_port,
                    certificates,
                });
            }
        }
        panic!("redis-server exited before listening, {ATTEMPTS} times (ports taken meanwhile?)");
    }

    /// `rediss://localhost:PORT/0?ssl_ca_certs=CA` with the CA that signed the server's
    /// certificate.
    pub fn url(&self) -> String {
        self.url_with(&format!("ssl_ca_certs={}", self.certificates.ca_file()))
    }

    /// `rediss://localhost:PORT/0?QUERY`.
    pub fn url_with(&self, query: &str) -> String {
        format!("rediss://localhost:{}/0?{query}", self.tls_port)
    }

    /// `127.0.0.1:PORT` of the plain-text port.
    pub fn plain_address(&self) -> String {
        format!("127.0.0.1:{}", self.plain_port)
    }

    pub fn certificates(&self) -> &TestCertificates {
        &self.certificates
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `socat` terminating TLS on a port of 127.0.0.1 and forwarding the plain bytes to `upstream`
/// (one forked socat per connection, all in one process group, killed on drop).
pub struct TlsTerminator {
    child: Child,
    port: u16,
    certificates: TestCertificates,
}

impl TlsTerminator {
    /// Starts one in front of `upstream` (`host:port`); `None` (skip) when `socat` is missing
    /// and cannot be installed and brokers are not required, a panic when they are.
    pub fn start(upstream: &str) -> Option<TlsTerminator> {
        let socat = match crate::debian::ensure_program(Path::new("/usr/bin/socat"), "socat") {
            Ok(socat) => socat,
            Err(error) => return skip_or_panic(&format!("no socat: {error}")),
        };
        let certificates = TestCertificates::generate().unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..ATTEMPTS {
            let [port] = free_ports();
            let listen = format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                certificates.server_certificate(),
                certificates.server_key()
            );
            let spawned = {
                use std::os::unix::process::CommandExt;
                Command::new(&socat)
                    .arg(listen)
                    .arg(format!("TCP:{upstream}"))
                    .process_group(0)
                    .stdout(Stdio::null())
                    .spawn()
            };
            let child = match spawned {
                Ok(child) => child,
                Err(error) => return skip_or_panic(&format!("cannot start socat ({error})")),
            };
            let mut child = Reaped(Some(child));
            if wait_for_port(child.child(), port, "socat") {
                return Some(TlsTerminator {
                    child: child.take(),
                    port,
                    certificates,
                });
            }
        }
        panic!("socat exited before listening, {ATTEMPTS} times (ports taken meanwhile?)");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `amqps://` URL that reaches the broker of the plain `amqp://` URL `plain` through
    /// this terminator: same credentials and vhost, host `localhost` (the certificate's name),
    /// and the CA that signed the certificate as `cafile`.
    pub fn amqps_url(&self, plain: &str) -> String {
        let rest = plain.split_once("://").map_or(plain, |(_, rest)| rest);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let credentials = authority
            .rsplit_once('@')
            .map_or(String::new(), |(credentials, _)| format!("{credentials}@"));
        format!(
            "amqps://{credentials}localhost:{}/{path}?cafile={}",
            self.port,
            self.certificates.ca_file()
        )
    }

    pub fn certificates(&self) -> &TestCertificates {
        &self.certificates
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        // The whole group: socat forks a child per connection, which would outlive the parent.
        // procps' `kill` (a bare machine lacks it), installed when missing as for the browser.
        match crate::debian::ensure_program(Path::new(crate::browser::KILL_PROGRAM), "procps") {
            Ok(kill) => {
                let _ = Command::new(kill)
                    .args(["-TERM", "--", &format!("-{}", self.child.id())])
                    .status();
            }
            Err(error) => eprintln!("socat's forked children may outlive it: {error}"),
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip_or_panic<T>(why: &str) -> Option<T> {
    if std::env::var("SOCKIO_REQUIRE_BROKERS").as_deref() == Ok("1") {
        panic!("required (SOCKIO_REQUIRE_BROKERS=1): {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A child process killed and reaped on drop unless taken: a server that did not start.
struct Reaped(Option<Child>);

impl Reaped {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not taken yet")
    }

    fn take(mut self) -> Child {
        self.0.take().expect("taken once")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How many times a server is started on fresh ports when it exits before listening.
const ATTEMPTS: usize = 5;

/// `N` different ports of 127.0.0.1 that were free a moment ago (held together while chosen, so
/// they differ). Another process may take one before the server binds it: the server then exits,
/// which [`wait_for_port`] reports.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("no free port: {e}")))
        .collect();
    std::array::from_fn(|i| {
        listeners[i]
            .local_addr()
            .map(|addr| addr.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"))
    })
}

/// Waits until `child` itself listens on `port` of 127.0.0.1 (the kernel's socket table names
/// the listening socket, `child`'s open files hold it: a listener of another process that took
/// the port meanwhile does not count); `false` when `child` has exited first (it could not bind).
fn wait_for_port(child: &mut Child, port: u16, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if listens(child.id(), port) {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never listened on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` holds a socket listening on 127.0.0.1:`port` (Linux: `/proc/net/tcp`
/// and `/proc/<pid>/fd`).
fn listens(pid: u32, port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    // Columns: sl, local_address, rem_address, st (0A: LISTEN), ..., inode (the tenth).
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|columns| columns.len() > 9 && columns[1] == local && columns[3] == "0A")
        .map(|columns| format!("socket:[{}]", columns[9]))
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| fd.ok())
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| {
            inodes
                .iter()
                .any(|inode| target.as_os_str() == inode.as_str())
        })
}
