//! The instrumented connection stream: byte counters at the socket, timing marks above TLS.
//!
//! A connection is a [`Timed`] over a [`Stream`], which is the plain [`Counted`] TCP stream or
//! TLS on top of it. `Counted` sees every byte on the wire (TLS records and handshake
//! included); `Timed` sees the HTTP bytes, so the instants it records (last request byte
//! written, first response byte read) are the ones k6's `httptrace` hooks report. The client
//! owns the whole stack, so the counters are plain fields: no sharing, no atomics.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A TCP stream that counts the bytes it reads and writes.
#[derive(Debug)]
pub(crate) struct Counted {
    tcp: TcpStream,
    read: u64,
    written: u64,
}

impl Counted {
    pub(crate) fn new(tcp: TcpStream) -> Self {
        Self {
            tcp,
            read: 0,
            written: 0,
        }
    }

    /// Bytes read from the socket so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Bytes written to the socket so far.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.written
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.tcp).poll_read(cx, buf);
        this.read += buf.filled().len().saturating_sub(before) as u64;
        result
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.written += n as u64;
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            this.written += n as u64;
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// The transport under HTTP: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    /// `http://`
    Plain(Counted),
    /// `https://` (boxed: a rustls session is large and plain connections should not pay it)
    Tls(Box<TlsStream<Counted>>),
}

impl Stream {
    /// The socket-level counters.
    pub(crate) fn counted(&self) -> &Counted {
        match self {
            Stream::Plain(counted) => counted,
            Stream::Tls(tls) => tls.get_ref().0,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $call
            }
            Stream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// The stream HTTP is spoken over: records when bytes were last written and first read.
#[derive(Debug)]
pub(crate) struct Timed {
    inner: Stream,
    first_read: Option<Instant>,
    last_write: Option<Instant>,
    /// Bytes were written since the last flush.
    dirty: bool,
}

impl Timed {
    pub(crate) fn new(inner: Stream) -> Self {
        Self {
            inner,
            first_read: None,
            last_write: None,
            dirty: false,
        }
    }

    /// Forgets the timing marks of the previous exchange.
    pub(crate) fn start_exchange(&mut self) {
        self.first_read = None;
        self.last_write = None;
    }

    /// When the first byte of this exchange was read, if one was.
    pub(crate) fn first_read(&self) -> Option<Instant> {
        self.first_read
    }

    /// When the last byte of this exchange was written and flushed, if any was.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        self.last_write
    }

    /// The socket-level counters.
    pub(crate) fn counted(&self) -> &Counted {
        self.inner.counted()
    }

    /// Whether the idle connection still looks usable: no EOF, error or stray byte is
    /// waiting. Polls once without blocking (any byte read here condemns the connection).
    pub(crate) fn probe_idle(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        Pin::new(&mut self.inner)
            .poll_read(&mut cx, &mut buf)
            .is_pending()
    }

    /// The write instant is taken when the bytes are flushed (the client always flushes).
    fn after_write(&mut self, result: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = result
            && *n > 0
        {
            self.dirty = true;
        }
    }
}

impl AsyncRead for Timed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.first_read.is_none() && buf.filled().len() > before {
            this.first_read = Some(Instant::now());
        }
        result
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        if this.dirty && matches!(result, Poll::Ready(Ok(()))) {
            this.dirty = false;
            this.last_write = Some(Instant::now());
        }
        result
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
