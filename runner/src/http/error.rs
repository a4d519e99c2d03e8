//! Request failures, their k6 `error_code`s and the partial measurements they still carry.
//!
//! Codes and messages follow k6's `lib/netext/httpext/error_codes.go`: 1000 generic,
//! 1020 invalid URL, 1050 timeout, 11xx DNS, 12xx TCP, 13xx TLS. (1400–1599 are not
//! errors of this client: k6 sets `error_code` = 1000 + status for responses ≥ 400.) One code
//! is ours: [`CUT_BY_HARD_STOP`].

use std::io;

use super::client::Timings;

/// The `error_code` of a request the test's hard stop cut before any response arrived (the
/// iteration was interrupted at the end of `gracefulStop` / `gracefulRampDown`). k6 records
/// nothing for such a request, so a target that never answers passes its gates; Stampede counts
/// it as a failed request. 1051 is unused by k6 (next to 1050, its request timeout).
pub const CUT_BY_HARD_STOP: u32 = 1051;

/// What went wrong, one variant per k6 error code (see [`ErrorKind::error_code`]).
///
/// The `Display` text is what k6 puts in the `error` tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 1020: the URL could not be parsed or has an unsupported scheme.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// 1050: the request (connect, TLS, send, response and body) exceeded its timeout.
    #[error("request timeout")]
    Timeout,
    /// 1101: the name does not resolve.
    #[error("lookup {host}: no such host")]
    NoSuchHost {
        /// The name looked up.
        host: String,
    },
    /// 1100: any other resolver failure.
    #[error("lookup {host}: {message}")]
    Dns {
        /// The name looked up.
        host: String,
        /// The resolver's message.
        message: String,
    },
    /// 1110: the address the host resolved to is in a denied range (k6 `blacklistIPs`).
    #[error("IP ({ip}) is in a blacklisted range ({range})")]
    BlacklistedIp {
        /// The address.
        ip: std::net::IpAddr,
        /// The denied range it is in.
        range: String,
    },
    /// 1110: allowed targets are set, and neither the host nor its address is one of them.
    #[error("{host}{} is not an allowed target", .ip.map(|ip| format!(" ({ip})")).unwrap_or_default())]
    NotAllowedTarget {
        /// The host.
        host: String,
        /// Its address, when known (a literal URL checked before the run has none).
        ip: Option<std::net::IpAddr>,
    },
    /// 1111: the host matches a denied host pattern (k6 `blockHostnames`); nothing was sent,
    /// not even a DNS query.
    #[error("hostname ({host}) is in a blocked pattern ({pattern})")]
    BlockedHostname {
        /// The host.
        host: String,
        /// The pattern it matches.
        pattern: String,
    },
    /// 1211: the TCP connect did not finish within the dial timeout (30 s, as k6's dialer).
    #[error("dial: i/o timeout")]
    DialTimeout,
    /// 1212: nothing listens on the port.
    #[error("dial: connection refused")]
    DialRefused,
    /// 1213: the connect failed with another OS error.
    #[error("dial: unknown errno {errno} error with msg `{message}`")]
    DialErrno {
        /// The OS error number.
        errno: i32,
        /// The OS message.
        message: String,
    },
    /// 1210: the connect failed without an OS error number.
    #[error("dial: {0}")]
    Dial(String),
    /// 1220: the peer reset the connection during the exchange.
    #[error("{op}: connection reset by peer")]
    ResetByPeer {
        /// `read` or `write`.
        op: &'static str,
    },
    /// 1201: writing to a connection the peer had closed.
    #[error("{op}: broken pipe")]
    BrokenPipe {
        /// `read` or `write`.
        op: &'static str,
    },
    /// 1202: another OS error during the exchange.
    #[error("{op}: unknown errno `{errno}` on linux with message `{message}`")]
    Errno {
        /// `read` or `write`.
        op: &'static str,
        /// The OS error number.
        errno: i32,
        /// The OS message.
        message: String,
    },
    /// 1200: another TCP-level failure.
    #[error("{0}")]
    Tcp(String),
    /// 1310: the server's certificate chain does not lead to a trusted root.
    #[error("x509: unknown authority")]
    TlsUnknownAuthority,
    /// 1311: the certificate is not valid for the host name.
    #[error("x509: certificate doesn't match hostname")]
    TlsHostname,
    /// 1301: the server did not speak TLS (bad record header or message).
    #[error("tls: {0}")]
    TlsRecordHeader(String),
    /// 1300: any other TLS failure (handshake alert, bad certificate, ...).
    #[error("tls: {0}")]
    Tls(String),
    /// 1000: the server's answer was not valid HTTP/1.1, or it closed before answering (`EOF`).
    #[error("{0}")]
    Protocol(String),
}

impl ErrorKind {
    /// k6's `error_code` for this failure.
    pub fn error_code(&self) -> u32 {
        match self {
            ErrorKind::Protocol(_) => 1000,
            ErrorKind::InvalidUrl(_) => 1020,
            ErrorKind::Timeout => 1050,
            ErrorKind::Dns { .. } => 1100,
            ErrorKind::NoSuchHost { .. } => 1101,
            ErrorKind::BlacklistedIp { .. } | ErrorKind::NotAllowedTarget { .. } => 1110,
            ErrorKind::BlockedHostname { .. } => 1111,
            ErrorKind::Tcp(_) => 1200,
            ErrorKind::BrokenPipe { .. } => 1201,
            ErrorKind::Errno { .. } => 1202,
            ErrorKind::Dial(_) => 1210,
            ErrorKind::DialTimeout => 1211,
            ErrorKind::DialRefused => 1212,
            ErrorKind::DialErrno { .. } => 1213,
            ErrorKind::ResetByPeer { .. } => 1220,
            ErrorKind::Tls(_) => 1300,
            ErrorKind::TlsRecordHeader(_) => 1301,
            ErrorKind::TlsUnknownAuthority => 1310,
            ErrorKind::TlsHostname => 1311,
        }
    }

    /// Classifies a failed TCP connect.
    pub(crate) fn from_dial(err: &io::Error) -> ErrorKind {
        match (err.kind(), err.raw_os_error()) {
            (io::ErrorKind::ConnectionRefused, _) => ErrorKind::DialRefused,
            (io::ErrorKind::TimedOut, _) => ErrorKind::DialTimeout,
            (_, Some(errno)) => ErrorKind::DialErrno {
                errno,
                message: err.to_string(),
            },
            _ => ErrorKind::Dial(err.to_string()),
        }
    }

    /// Classifies an IO error on an established connection (TLS errors included).
    pub(crate) fn from_io(err: &io::Error, op: &'static str) -> ErrorKind {
        if let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return ErrorKind::from_tls(tls);
        }
        match (err.kind(), err.raw_os_error()) {
            (io::ErrorKind::ConnectionReset, _) => ErrorKind::ResetByPeer { op },
            (io::ErrorKind::BrokenPipe, _) => ErrorKind::BrokenPipe { op },
            (io::ErrorKind::UnexpectedEof, _) => ErrorKind::Protocol("unexpected EOF".into()),
            (_, Some(errno)) => ErrorKind::Errno {
                op,
                errno,
                message: err.to_string(),
            },
            _ => ErrorKind::Tcp(format!("{op}: {err}")),
        }
    }

    /// Classifies a rustls failure.
    pub(crate) fn from_tls(err: &rustls::Error) -> ErrorKind {
        use rustls::{CertificateError, Error};
        match err {
            Error::InvalidCertificate(CertificateError::UnknownIssuer)
            | Error::InvalidCertificate(CertificateError::BadSignature) => {
                ErrorKind::TlsUnknownAuthority
            }
            Error::InvalidCertificate(CertificateError::NotValidForName)
            | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
                ErrorKind::TlsHostname
            }
            Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
                ErrorKind::TlsRecordHeader(err.to_string())
            }
            _ => ErrorKind::Tls(err.to_string()),
        }
    }
}

/// A failed request: what went wrong plus whatever was measured before it did.
///
/// k6 still emits `http_req_*` samples (status 0) and counts the bytes of failed requests,
/// so the phases reached and the bytes moved are kept here.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct HttpError {
    /// The failure and its k6 code.
    pub kind: ErrorKind,
    /// The phases measured until the failure (k6's rules: `waiting` runs to the failure
    /// when no response byte came).
    pub timings: Timings,
    /// Bytes written on the wire for this request.
    pub bytes_sent: u64,
    /// Bytes read from the wire for this request.
    pub bytes_received: u64,
    /// The TLS version, when a TLS handshake completed.
    pub tls_version: Option<&'static str>,
}

impl HttpError {
    /// A failure with nothing measured (bad URL, ...).
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            timings: Timings::default(),
            bytes_sent: 0,
            bytes_received: 0,
            tls_version: None,
        }
    }

    /// k6's `error_code` (for the `error_code` tag and `response.error_code`).
    pub fn error_code(&self) -> u32 {
        self.kind.error_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_map_to_k6_codes() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(ErrorKind::from_dial(&refused).error_code(), 1212);
        let timed_out = io::Error::from_raw_os_error(110);
        assert_eq!(ErrorKind::from_dial(&timed_out).error_code(), 1211);
        let unreachable = io::Error::from_raw_os_error(101);
        assert_eq!(ErrorKind::from_dial(&unreachable).error_code(), 1213);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let kind = ErrorKind::from_io(&reset, "read");
        assert_eq!(kind.error_code(), 1220);
        assert_eq!(kind.to_string(), "read: connection reset by peer");
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(ErrorKind::from_io(&pipe, "write").error_code(), 1201);
        let other = io::Error::from_raw_os_error(5);
        assert_eq!(ErrorKind::from_io(&other, "read").error_code(), 1202);
    }

    #[test]
    fn tls_errors_map_to_k6_codes() {
        use rustls::{CertificateError, Error};
        let wrap = |e: Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let unknown = wrap(Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert_eq!(ErrorKind::from_io(&unknown, "read").error_code(), 1310);
        let name = wrap(Error::InvalidCertificate(CertificateError::NotValidForName));
        assert_eq!(ErrorKind::from_io(&name, "read").error_code(), 1311);
        let expired = wrap(Error::InvalidCertificate(CertificateError::Expired));
        assert_eq!(ErrorKind::from_io(&expired, "read").error_code(), 1300);
    }
}
