//! Accepted connections whose request lines may carry bytes the `http`
//! crate's URI parser refuses in a query string (`"`, `<`, `>`, `#`), as
//! in `curl 'localhost:9090/api/v1/query?query=up{job="koban"}'`. Go's
//! net/http (Prometheus) accepts them; hyper answers an empty 400 before
//! any handler runs. [`LenientListener`] hands hyper each connection
//! wrapped in [`LenientIo`], which percent-encodes those bytes in the
//! request target of every HTTP/1 request it can follow, so the handlers
//! see `%22` and decode it as usual.
//!
//! The reader follows requests by their framing: request line, header
//! lines, then `Content-Length` bytes of body. Anything it cannot follow
//! (chunked bodies, `Upgrade`, HTTP/2, overlong lines, conflicting
//! lengths) switches the connection to plain pass-through, where hyper
//! sees the bytes unchanged.

use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A [`TcpListener`] whose connections are [`LenientIo`].
pub struct LenientListener(pub TcpListener);

impl Listener for LenientListener {
    type Io = LenientIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = Listener::accept(&mut self.0).await;
        (LenientIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Longest header line inspected for framing; longer lines end the
/// rewriting (hyper refuses heads that large anyway).
const MAX_LINE: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Request method (or blank lines between requests).
    Method,
    /// Request target: the bytes that get encoded.
    Target,
    /// Rest of the request line (the version).
    Version,
    /// Header lines, until the blank line.
    Headers,
    /// This many body bytes before the next request.
    Body(u64),
    /// Bytes pass unchanged for the rest of the connection.
    Through,
}

/// A connection whose reads percent-encode `"`, `<`, `>` and `#` in
/// request targets (see the module docs). Writes pass through.
pub struct LenientIo<S> {
    inner: S,
    state: State,
    /// The request line so far (method and target), to spot `PRI *` and
    /// `CONNECT`.
    method: Vec<u8>,
    /// The current header line (up to [`MAX_LINE`]).
    line: Vec<u8>,
    line_too_long: bool,
    content_length: Option<u64>,
    /// A header that makes the framing unfollowable (chunked, upgrade).
    opaque: bool,
    /// Rewritten bytes not yet handed to the reader, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
}

impl<S> LenientIo<S> {
    pub fn new(inner: S) -> Self {
        LenientIo {
            inner,
            state: State::Method,
            method: Vec::new(),
            line: Vec::new(),
            line_too_long: false,
            content_length: None,
            opaque: false,
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// Ends a header line: records framing headers; a blank line ends the head.
    fn end_header_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let too_long = std::mem::replace(&mut self.line_too_long, false);
        if line.is_empty() {
            let next = if self.opaque {
                State::Through
            } else {
                match self.content_length.take() {
                    Some(0) | None => State::Method,
                    Some(n) => State::Body(n),
                }
            };
            self.state = next;
            self.opaque = false;
            return;
        }
        if too_long {
            self.opaque = true;
            return;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok());
            match (n, self.content_length) {
                (Some(n), None) => self.content_length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => self.opaque = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            self.opaque = true;
        }
    }

    /// Rewrites `input` into `self.out` (state machine over the bytes).
    fn rewrite(&mut self, input: &[u8]) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Through => {
                    self.out.extend_from_slice(&input[i..]);
                    return;
                }
                State::Body(n) => {
                    let take = (input.len() - i).min(n.min(usize::MAX as u64) as usize);
                    self.out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::Method
                    } else {
                        State::Body(left)
                    };
                }
                State::Method => {
                    let b = input[i];
                    i += 1;
                    self.out.push(b);
                    match b {
                        b' ' => {
                            self.state = if self.method == b"CONNECT" {
                                State::Through
                            } else {
                                State::Target
                            };
                        }
                        b'\r' | b'\n' => self.method.clear(),
                        _ if self.method.len() < 16 => self.method.push(b),
                        _ => self.state = State::Through,
                    }
                }
                State::Target => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'"' => self.out.extend_from_slice(b"%22"),
                        b'#' => self.out.extend_from_slice(b"%23"),
                        b'<' => self.out.extend_from_slice(b"%3C"),
                        b'>' => self.out.extend_from_slice(b"%3E"),
                        b' ' => {
                            self.out.push(b);
                            // HTTP/2 with prior knowledge: "PRI * HTTP/2.0".
                            self.state = if self.method == b"PRI" {
                                State::Through
                            } else {
                                State::Version
                            };
                            self.method.clear();
                        }
                        b'\n' => {
                            self.out.push(b);
                            self.method.clear();
                            self.state = State::Headers;
                        }
                        _ => self.out.push(b),
                    }
                }
                State::Version => {
                    let b = input[i];
                    i += 1;
                    self.out.push(b);
                    if b == b'\n' {
                        self.state = State::Headers;
                    }
                }
                State::Headers => {
                    let b = input[i];
                    i += 1;
                    self.out.push(b);
                    match b {
                        b'\n' => self.end_header_line(),
                        b'\r' => {}
                        _ if self.line.len() < MAX_LINE => self.line.push(b),
                        _ => self.line_too_long = true,
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LenientIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        loop {
            if me.out_pos < me.out.len() {
                let n = (me.out.len() - me.out_pos).min(buf.remaining());
                buf.put_slice(&me.out[me.out_pos..me.out_pos + n]);
                me.out_pos += n;
                if me.out_pos == me.out.len() {
                    me.out.clear();
                    me.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if me.state == State::Through {
                // Nothing buffered: read straight into the caller's buffer.
                return Pin::new(&mut me.inner).poll_read(cx, buf);
            }
            if let State::Body(n) = me.state {
                // Body bytes pass unchanged: straight into the caller's
                // buffer, no further than the body's end.
                let limit = buf
                    .remaining()
                    .min(usize::try_from(n).unwrap_or(usize::MAX));
                let mut rb = ReadBuf::new(buf.initialize_unfilled_to(limit));
                let r = Pin::new(&mut me.inner).poll_read(cx, &mut rb);
                let k = rb.filled().len();
                buf.advance(k);
                if k > 0 {
                    let left = n - k as u64;
                    me.state = if left == 0 {
                        State::Method
                    } else {
                        State::Body(left)
                    };
                }
                return r;
            }
            let mut tmp = [0u8; 4096];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    if rb.filled().is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    me.rewrite(rb.filled());
                }
                other => return other,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LenientIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<u8> {
        let mut io = LenientIo::new(());
        for c in chunks {
            io.rewrite(c);
        }
        io.out
    }

    #[test]
    fn encodes_targets_of_every_followed_request() {
        let req = b"GET /api/v1/query?query=up{job=\"k\"} HTTP/1.1\r\nHost: x\r\n\r\n".as_slice();
        let want = b"GET /api/v1/query?query=up{job=%22k%22} HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert_eq!(run(&[req]), want);
        // Split anywhere, twice on one connection.
        let mut two = req.to_vec();
        two.extend_from_slice(req);
        let (a, b) = two.split_at(30);
        assert_eq!(run(&[a, b]), [want.clone(), want.clone()].concat());
        // A body of Content-Length bytes passes unchanged, then the next request is rewritten.
        let post = b"POST /q?a=\"<#> HTTP/1.1\r\ncontent-length: 5\r\n\r\nq=\"x\"".as_slice();
        assert_eq!(
            run(&[post, req]),
            [
                b"POST /q?a=%22%3C%23%3E HTTP/1.1\r\ncontent-length: 5\r\n\r\nq=\"x\"".to_vec(),
                want.clone()
            ]
            .concat()
        );
        // Chunked bodies and HTTP/2 are passed through from there on.
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice();
        assert_eq!(run(&[chunked, req]), [chunked, req].concat());
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\"\"".as_slice();
        assert_eq!(run(&[h2]), h2.to_vec());
    }

    /// Through the reader: a POST body (read straight into the caller's
    /// buffer) passes unchanged and the next request is rewritten.
    #[tokio::test]
    async fn reads_bodies_unchanged_and_rewrites_the_next_request() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64);
        let body = "q=\"x\"".repeat(50);
        let input = format!(
            "POST /a?b=\" HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /c?d=\" HTTP/1.1\r\n\r\n",
            body.len()
        );
        let want = input
            .replacen("/a?b=\"", "/a?b=%22", 1)
            .replacen("/c?d=\"", "/c?d=%22", 1);
        let writer = tokio::spawn(async move {
            client.write_all(input.as_bytes()).await.unwrap();
            client.shutdown().await.unwrap();
        });
        let mut io = LenientIo::new(server);
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = io.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }
}
