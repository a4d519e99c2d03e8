//! The per-VU HTTP/1.1 client with k6's timing phases, byte counts and error codes.
//!
//! - [`target`]: URLs parsed once into scheme, host, port and path ([`Target`]).
//! - [`dns`]: the run-wide resolve-once cache ([`DnsCache`]).
//! - [`connect`]: TCP connect and rustls handshake.
//! - [`io`]: the instrumented stream (bytes at the socket, timing marks above TLS).
//! - [`h1`]: the HTTP/1.1 wire format (request heads, response heads, chunked bodies).
//! - [`client`]: [`VuClient`], one per VU: keep-alive per origin, no task or channel.
//! - [`error`]: [`HttpError`] and k6's `error_code`s.
//! - [`target_policy`]: where load may go ([`TargetPolicy`]), checked on every connection.

mod client;
mod connect;
mod dns;
mod error;
mod h1;
mod io;
mod target;
pub mod target_policy;

pub use client::{
    BodyMode, ClientConfig, DEFAULT_USER_AGENT, OutgoingRequest, Response, SendOptions, Timings,
    VuClient,
};
pub use dns::DnsCache;
pub use error::{CUT_BY_HARD_STOP, ErrorKind, HttpError};
pub use target::{Scheme, Target};
pub use target_policy::TargetPolicy;
