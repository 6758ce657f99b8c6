//! TLS for broker connections (`rediss://`, `amqps://`).
//!
//! The core parses what the URL asks for ([`TlsOptions`]); this module turns that into rustls
//! client settings (trusted roots, client certificate, verification) once for every runtime, and
//! gives the blocking runtime its handshake. The async runtimes run the same settings through
//! futures-rustls. Reading certificate files is I/O, which is why this is not in the core.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sockio_core::pubsub::TlsOptions;

pub use rustls;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read TLS file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("no certificate in the TLS CA file {0}")]
    NoCertificates(String),
    #[error("no trusted certificate authority: the system has none and the URL names no CA file")]
    NoRoots,
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS settings refused: {0}")]
    Config(rustls::Error),
}

/// What a connection needs to start a TLS handshake.
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl TlsClient {
    /// Builds the client settings: the CA file's certificates, or the system's when the URL
    /// names none; the client certificate if given; no server verification only when asked.
    pub fn new(options: &TlsOptions) -> Result<TlsClient, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let builder = if options.verify_server && options.check_server_name {
            builder.with_root_certificates(roots(options.ca_file.as_deref())?)
        } else if options.verify_server {
            let chain = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(options.ca_file.as_deref())?),
                provider,
            )
            .build()
            .map_err(|error| TlsError::Config(rustls::Error::General(error.to_string())))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerName(chain)))
        } else {
            // Once per process: the settings are made for every connection attempt (so a
            // rotated CA file is read again), and a warning per reconnect filled the log.
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    server = %options.server_name,
                    "broker TLS without verifying the server's certificate: encrypted, not authenticated"
                );
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
        };
        let config = match &options.client_identity {
            Some(identity) => {
                let chain = certificates(&identity.certificate_file)?;
                let key = PrivateKeyDer::from_pem_file(&identity.key_file).map_err(|error| {
                    TlsError::File {
                        path: identity.key_file.clone(),
                        reason: error.to_string(),
                    }
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(TlsError::Config)?
            }
            None => builder.with_no_client_auth(),
        };
        let server_name = ServerName::try_from(options.server_name.clone())
            .map_err(|_| TlsError::ServerName(options.server_name.clone()))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Runs the handshake over a blocking stream, so a refused certificate is reported as a
    /// connection failure rather than at the first publish. `time_left` is asked before each
    /// exchange with the peer, and sets the stream's timeouts to what is left of the handshake's
    /// deadline (`None`: it has passed, a `TimedOut` error): each read or write waiting its own
    /// whole timeout, a peer sending a byte at a time could stretch the handshake without end.
    pub fn connect_blocking<S: Read + Write>(
        &self,
        mut stream: S,
        mut time_left: impl FnMut(&mut S) -> std::io::Result<Option<std::time::Duration>>,
    ) -> std::io::Result<rustls::StreamOwned<ClientConnection, S>> {
        use std::io::{Error, ErrorKind};
        let mut connection = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(Error::other)?;
        let timed_out = || Error::new(ErrorKind::TimedOut, "the TLS handshake took too long");
        // One read or write at a time (rustls' `complete_io` loops until the handshake is over),
        // each bounded by what is left.
        while connection.is_handshaking() {
            if time_left(&mut stream)?.is_none() {
                return Err(timed_out());
            }
            let exchanged = if connection.wants_write() {
                connection.write_tls(&mut stream).map(|_| ())
            } else {
                match connection.read_tls(&mut stream) {
                    Ok(0) => Err(Error::new(
                        ErrorKind::UnexpectedEof,
                        "the broker closed the connection during the TLS handshake",
                    )),
                    Ok(_) => connection
                        .process_new_packets()
                        .map(|_| ())
                        .map_err(|error| {
                            // The alert that tells the broker why, as `complete_io` sends it.
                            let _ = connection.write_tls(&mut stream);
                            Error::new(ErrorKind::InvalidData, error)
                        }),
                    Err(error) => Err(error),
                }
            };
            match exchanged {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                // A read timeout: Unix reports it as WouldBlock.
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Err(timed_out()),
                Err(error) => return Err(error),
            }
        }
        // The handshake's last flight (the client's Finished).
        while connection.wants_write() {
            if time_left(&mut stream)?.is_none() {
                return Err(timed_out());
            }
            match connection.write_tls(&mut stream) {
                Ok(_) => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Err(timed_out()),
                Err(error) => return Err(error),
            }
        }
        Ok(rustls::StreamOwned::new(connection, stream))
    }
}

fn roots(ca_file: Option<&str>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let (added, _) = roots.add_parsable_certificates(certificates(path)?);
            if added == 0 {
                return Err(TlsError::NoCertificates(path.to_owned()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "skipping part of the system's certificate store");
            }
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::NoRoots);
            }
        }
    }
    Ok(roots)
}

fn certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| file_error(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(error.to_string()))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificates(path.to_owned()));
    }
    Ok(certificates)
}

/// `ssl_check_hostname=false`: the certificate chain is verified as always, but a certificate
/// that does not name the server is accepted.
#[derive(Debug)]
struct AnyServerName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name after the chain: this error means the chain was trusted.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `ssl_cert_reqs=none` / `no_verify_ssl=1`: any certificate is accepted, but the handshake's
/// signatures are still checked so the session keys belong to whoever holds that certificate.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockio_core::pubsub::ClientIdentity;

    fn options(ca_file: Option<&str>) -> TlsOptions {
        TlsOptions {
            server_name: "localhost".into(),
            ca_file: ca_file.map(str::to_owned),
            client_identity: None,
            verify_server: true,
            check_server_name: true,
        }
    }

    /// Runs a whole handshake in memory between a client with `options` and a server holding
    /// the test certificate (for `localhost` and `127.0.0.1`); the client's verdict.
    fn handshake(
        options: &TlsOptions,
        made: &sockio_testkit::tls::TestCertificates,
    ) -> Result<(), rustls::Error> {
        let settings = TlsClient::new(options).expect("client settings");
        let chain = certificates(&made.server_certificate()).expect("the server's certificate");
        let key = PrivateKeyDer::from_pem_file(made.server_key()).expect("the server's key");
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server settings");
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).expect("server");
        let mut client =
            ClientConnection::new(settings.config, settings.server_name).expect("client");
        for _ in 0..16 {
            if !client.is_handshaking() {
                return Ok(());
            }
            let mut wire = Vec::new();
            client.write_tls(&mut wire).expect("client bytes");
            server
                .read_tls(&mut wire.as_slice())
                .expect("to the server");
            // The server's own errors show up as the client's (its alert).
            let _ = server.process_new_packets();
            wire.clear();
            server.write_tls(&mut wire).expect("server bytes");
            client
                .read_tls(&mut wire.as_slice())
                .expect("to the client");
            client.process_new_packets()?;
        }
        panic!("the handshake did not end");
    }

    #[test]
    fn ssl_check_hostname_false_takes_a_trusted_certificate_for_another_name() {
        let made = sockio_testkit::tls::TestCertificates::generate().expect("certificates");
        let mut options = options(Some(&made.ca_file()));
        assert_eq!(handshake(&options, &made), Ok(()));
        options.server_name = "broker.example".into();
        assert!(
            matches!(
                handshake(&options, &made),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "another name is refused while the name is checked"
        );
        options.check_server_name = false;
        assert_eq!(handshake(&options, &made), Ok(()));
        // The chain is still verified.
        options.ca_file = Some(made.other_ca_file());
        assert_eq!(
            handshake(&options, &made),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        );
    }

    #[test]
    fn a_missing_ca_file_is_named_in_the_error() {
        let error = TlsClient::new(&options(Some("/nonexistent/ca.pem")))
            .err()
            .expect("a missing file fails");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let path =
            std::env::temp_dir().join(format!("sockio-tls-empty-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").expect("write a temp file");
        let error = TlsClient::new(&options(path.to_str()))
            .err()
            .expect("no certificate fails");
        let _ = std::fs::remove_file(&path);
        assert!(matches!(error, TlsError::NoCertificates(_)), "{error}");
    }

    /// A client certificate whose key is in the same file (Python's `load_cert_chain` with a
    /// certificate file alone), as the URL's certificate file alone gives it.
    #[test]
    fn a_client_certificate_and_its_key_in_one_file_are_read() {
        let made = sockio_testkit::tls::TestCertificates::generate().expect("certificates");
        let read = |path: String| std::fs::read_to_string(path).expect("a PEM file");
        let both = std::env::temp_dir().join(format!("sockio-tls-both-{}.pem", std::process::id()));
        let pem = read(made.server_certificate()) + &read(made.server_key());
        std::fs::write(&both, pem).expect("write a temp file");
        let both_path = both.to_str().expect("a UTF-8 path").to_owned();
        let mut options = options(Some(&made.ca_file()));
        options.client_identity = Some(ClientIdentity {
            certificate_file: both_path.clone(),
            key_file: both_path,
        });
        let built = TlsClient::new(&options);
        let _ = std::fs::remove_file(&both);
        assert!(built.is_ok(), "{:?}", built.err());
    }

    #[test]
    fn unverified_settings_build_without_roots() {
        let mut options = options(Some("/nonexistent/ca.pem"));
        options.verify_server = false;
        assert!(TlsClient::new(&options).is_ok());
    }
}
