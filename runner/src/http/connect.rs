//! Opening a connection: DNS (through the shared cache), TCP connect, then TLS with rustls.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::client::{ClientConfig, Trace};
use super::dns;
use super::error::ErrorKind;
use super::io::{Counted, Stream, Timed};
use super::target::{Scheme, Target};

/// k6's dialer gives up on a TCP connect after 30 s (the request timeout may fire first).
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A freshly opened transport, ready for HTTP.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) stream: Timed,
    pub(crate) tls_version: Option<&'static str>,
    pub(crate) remote: SocketAddr,
}

/// Resolves, connects and (for `https`) runs the TLS handshake, recording each phase in `trace`.
pub(crate) async fn open(
    target: &Target,
    config: &ClientConfig,
    trace: &mut Trace,
) -> Result<Opened, ErrorKind> {
    let guarded = !config.targets.is_open();
    if guarded {
        config.targets.check_host(target.host())?;
    }
    let ip = match target.ip() {
        Some(ip) => ip,
        None => {
            let addrs = config.dns.resolve(target.host()).await?;
            dns::pick(&addrs).ok_or_else(|| ErrorKind::NoSuchHost {
                host: target.host().to_owned(),
            })?
        }
    };
    if guarded {
        config.targets.check_address(target.host(), ip)?;
    }
    let remote = SocketAddr::new(ip, target.port());

    let connect_start = Instant::now();
    trace.connect_start = Some(connect_start);
    let tcp = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(remote)).await {
        Err(_elapsed) => return Err(ErrorKind::DialTimeout),
        Ok(Err(err)) => return Err(ErrorKind::from_dial(&err)),
        Ok(Ok(tcp)) => tcp,
    };
    trace.connect_done = Some(Instant::now());
    // Like Go's dialer; a failure here only costs latency.
    let _ = tcp.set_nodelay(true);

    let counted = Counted::new(tcp);
    let (stream, tls_version) = match target.scheme() {
        Scheme::Http => (Stream::Plain(counted), None),
        Scheme::Https => {
            trace.tls_start = Some(Instant::now());
            let server_name = match target.ip() {
                Some(ip) => ServerName::IpAddress(ip.into()),
                None => ServerName::try_from(target.host().to_owned())
                    .map_err(|e| ErrorKind::Tls(format!("invalid server name: {e}")))?,
            };
            let connector = TlsConnector::from(tls_config(config.insecure_skip_tls_verify)?);
            let tls = match connector
                .connect(server_name, counted)
                .into_fallible()
                .await
            {
                Ok(tls) => tls,
                Err((err, counted)) => {
                    // k6 counts the bytes of a failed handshake too.
                    trace.handshake_bytes = (counted.bytes_written(), counted.bytes_read());
                    return Err(ErrorKind::from_io(&err, "read"));
                }
            };
            trace.tls_done = Some(Instant::now());
            let version = tls.get_ref().1.protocol_version().map(tls_version_name);
            trace.tls_version = version;
            (Stream::Tls(Box::new(tls)), version)
        }
    };
    Ok(Opened {
        stream: Timed::new(stream),
        tls_version,
        remote,
    })
}

/// k6's `tls_version` tag values.
fn tls_version_name(version: rustls::ProtocolVersion) -> &'static str {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "tls1.3",
        rustls::ProtocolVersion::TLSv1_2 => "tls1.2",
        rustls::ProtocolVersion::TLSv1_1 => "tls1.1",
        rustls::ProtocolVersion::TLSv1_0 => "tls1.0",
        _ => "unknown",
    }
}

/// The process-wide rustls configurations (one verifying, one not), built on first use.
///
/// Session resumption is off: like k6's per-VU Go transport (no session cache), every new
/// connection does a full handshake, and VUs share no mutable TLS state.
fn tls_config(insecure: bool) -> Result<Arc<rustls::ClientConfig>, ErrorKind> {
    static VERIFYING: OnceLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> = OnceLock::new();
    static INSECURE: OnceLock<Result<Arc<rustls::ClientConfig>, rustls::Error>> = OnceLock::new();
    let cell = if insecure { &INSECURE } else { &VERIFYING };
    cell.get_or_init(|| build_tls_config(insecure))
        .clone()
        .map_err(|e| ErrorKind::Tls(e.to_string()))
}

fn build_tls_config(insecure: bool) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// `insecureSkipTLSVerify`: accepts any certificate, but still checks that the handshake
/// is signed by the key of the certificate presented (as Go's `InsecureSkipVerify`).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
