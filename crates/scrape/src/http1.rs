//! A small HTTP/1.1 client for the common case: a plain `http://` target
//! whose requests carry only fixed headers (no proxy, no oauth2, no secret
//! files: see `HttpClient::fixed_headers`). The scrape loop owns one kept-alive
//! connection per target and reads the response straight into the page
//! buffer, in its own task: no connection task, no channel between the two,
//! no per-request URL or header-map work. Everything else (TLS, proxies,
//! redirects, oauth2, credentials from files) goes through the general
//! client (`koban_httpclient`).
//!
//! Supported: `Content-Length`, chunked and close-delimited bodies,
//! `Content-Encoding: gzip`, keep-alive with one retry when a reused
//! connection turns out to be closed before any response byte.
//! A 3xx response is reported as [`Fetched::Redirect`]: the caller asks the
//! general client, which applies the redirect policy.

use crate::ScrapeError;
use std::io::Read;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 << 10;
/// Spare room kept in the buffer before each read.
const READ_CHUNK: usize = 32 << 10;

/// Where to connect.
#[derive(Debug, Clone)]
enum Addr {
    Ip(SocketAddr),
    Name(String, u16),
}

/// Outcome of a fetch.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The body is in the buffer; the Content-Type header value, if any.
    Page(Option<String>),
    /// A 3xx answer: let the general client follow (or refuse) it.
    Redirect,
}

/// A plain-HTTP client bound to one target URL.
pub(crate) struct Http1Client {
    addr: Addr,
    /// The whole request head, serialised once.
    request: Vec<u8>,
    conn: Option<TcpStream>,
    /// Scratch for gzip bodies (compressed bytes), kept between scrapes only
    /// while small.
    scratch: Vec<u8>,
}

/// Response head facts the client needs.
struct Head {
    status: u16,
    reason: String,
    len: usize,
    content_length: Option<u64>,
    chunked: bool,
    gzip: bool,
    keep_alive: bool,
    content_type: Option<String>,
}

impl Http1Client {
    /// A client for `url` if the fast path applies: `http` scheme, no
    /// credentials in the URL. `extra` are further request header lines
    /// (`Name: value`).
    pub(crate) fn new(url: &reqwest::Url, extra: &[(&str, &str)]) -> Option<Self> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let port = url.port_or_known_default()?;
        let host = url.host_str()?;
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let addr = match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => Addr::Ip(SocketAddr::new(ip, port)),
            Err(_) => Addr::Name(host.to_string(), port),
        };
        let mut req = Vec::with_capacity(256);
        req.extend_from_slice(b"GET ");
        req.extend_from_slice(url.path().as_bytes());
        if let Some(q) = url.query() {
            req.push(b'?');
            req.extend_from_slice(q.as_bytes());
        }
        req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        req.extend_from_slice(host.as_bytes());
        if let Some(p) = url.port() {
            req.extend_from_slice(format!(":{p}").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        for (n, v) in extra {
            if n.bytes().any(|b| b == b'\r' || b == b'\n' || b == b':')
                || v.bytes().any(|b| b == b'\r' || b == b'\n')
            {
                return None;
            }
            req.extend_from_slice(n.as_bytes());
            req.extend_from_slice(b": ");
            req.extend_from_slice(v.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"Accept-Encoding: gzip\r\n\r\n");
        Some(Http1Client {
            addr,
            request: req,
            conn: None,
            scratch: Vec::new(),
        })
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let s = match &self.addr {
            Addr::Ip(a) => TcpStream::connect(*a).await?,
            Addr::Name(h, p) => TcpStream::connect((h.as_str(), *p)).await?,
        };
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// Fetches the page into `buf` (cleared first), enforcing `limit` (0:
    /// none) on the decoded body. `err` turns a low-level reason into the
    /// scrape error. Cancel-safe: a connection is only kept after a complete
    /// response.
    pub(crate) async fn fetch(
        &mut self,
        buf: &mut Vec<u8>,
        limit: u64,
        err: impl Fn(String) -> ScrapeError,
    ) -> Result<Fetched, ScrapeError> {
        let (mut conn, mut reused) = match self.conn.take() {
            Some(c) => (c, true),
            None => (self.connect().await.map_err(|e| err(e.to_string()))?, false),
        };
        let head = loop {
            buf.clear();
            match request_head(&mut conn, &self.request, buf).await {
                Ok(Some(h)) => break h,
                // A reused connection the server closed meanwhile (nothing
                // of a response read): once more on a fresh one.
                Ok(None) | Err(HeadError::Io(_)) if reused && buf.is_empty() => {
                    conn = self.connect().await.map_err(|e| err(e.to_string()))?;
                    reused = false;
                }
                Ok(None) => return Err(err("EOF before the response".into())),
                Err(HeadError::Io(m) | HeadError::Bad(m)) => return Err(err(m)),
            }
        };
        if (300..400).contains(&head.status) {
            return Ok(Fetched::Redirect);
        }
        if !(200..300).contains(&head.status) {
            return Err(ScrapeError::Status(format!(
                "{} {}",
                head.status, head.reason
            )));
        }
        // The body starts after the head; move what was read past it to the front.
        buf.drain(..head.len);
        let raw_limit = if head.gzip { 0 } else { limit };
        let complete = if head.status == 204 || head.status == 205 {
            buf.clear();
            true
        } else if head.chunked {
            read_chunked(&mut conn, buf, raw_limit, &err).await?
        } else if let Some(n) = head.content_length {
            if raw_limit > 0 && n > raw_limit {
                return Err(ScrapeError::BodySizeLimit(raw_limit));
            }
            read_exact_len(&mut conn, buf, n).await.map_err(&err)?;
            true
        } else {
            read_to_end(&mut conn, buf, raw_limit, &err).await?;
            false
        };
        if head.gzip {
            gunzip(buf, &mut self.scratch, limit).map_err(|e| match e {
                GzError::Limit => ScrapeError::BodySizeLimit(limit),
                GzError::Bad(m) => err(format!("decompressing gzip body: {m}")),
            })?;
        }
        if complete && head.keep_alive {
            self.conn = Some(conn);
        }
        Ok(Fetched::Page(head.content_type))
    }
}

enum HeadError {
    /// The socket failed.
    Io(String),
    /// The answer is not HTTP.
    Bad(String),
}

/// Writes the request and reads until the response head is complete.
/// `Ok(None)`: the connection was closed before any response byte.
async fn request_head(
    conn: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Option<Head>, HeadError> {
    let io = |e: std::io::Error| HeadError::Io(e.to_string());
    conn.write_all(request).await.map_err(io)?;
    loop {
        // 1xx answers (100 Continue...) precede the real one.
        while let Some(h) = parse_head(buf).map_err(HeadError::Bad)? {
            if !(100..200).contains(&h.status) {
                return Ok(Some(h));
            }
            buf.drain(..h.len);
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::Bad(format!(
                "response head larger than {MAX_HEAD} bytes"
            )));
        }
        reserve(buf);
        if conn.read_buf(buf).await.map_err(io)? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(HeadError::Bad(
                "unexpected EOF reading the response head".into(),
            ));
        }
    }
}

fn reserve(buf: &mut Vec<u8>) {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
}

/// Parses a complete response head at the start of `buf`; None if more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed HTTP response: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let mut h = Head {
        status,
        reason: r.reason.unwrap_or("").to_string(),
        len,
        content_length: None,
        chunked: false,
        gzip: false,
        keep_alive: r.version == Some(1),
        content_type: None,
    };
    for x in r.headers.iter() {
        let v = x.value;
        if x.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| "malformed HTTP response: bad Content-Length".to_string())?;
            if h.content_length.is_some_and(|m| m != n) {
                return Err("malformed HTTP response: conflicting Content-Length".into());
            }
            h.content_length = Some(n);
        } else if x.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = v.rsplit(|&b| b == b',').next().unwrap_or(b"");
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                h.chunked = true;
            } else {
                // Unknown transfer coding: the body ends with the connection.
                h.keep_alive = false;
            }
        } else if x.name.eq_ignore_ascii_case("content-encoding") {
            let v = v.trim_ascii();
            if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") {
                h.gzip = true;
            } else if !v.is_empty() && !v.eq_ignore_ascii_case(b"identity") {
                return Err(format!(
                    "unsupported Content-Encoding {:?}",
                    String::from_utf8_lossy(v)
                ));
            }
        } else if x.name.eq_ignore_ascii_case("connection") {
            for t in v.split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    h.keep_alive = false;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && r.version == Some(0) {
                    h.keep_alive = true;
                }
            }
        } else if x.name.eq_ignore_ascii_case("content-type") {
            h.content_type = Some(String::from_utf8_lossy(v).into_owned());
        }
    }
    if h.chunked {
        h.content_length = None;
    }
    if h.content_length.is_none() && !h.chunked {
        h.keep_alive = false;
    }
    Ok(Some(h))
}

async fn read_exact_len(conn: &mut TcpStream, buf: &mut Vec<u8>, n: u64) -> Result<(), String> {
    let n = usize::try_from(n).map_err(|_| "Content-Length too large".to_string())?;
    if buf.len() > n {
        // More than the body: the server is not speaking HTTP/1.1 keep-alive properly.
        return Err("response longer than its Content-Length".into());
    }
    // A bogus huge Content-Length must not allocate up front.
    buf.reserve((n - buf.len()).min(16 << 20));
    while buf.len() < n {
        reserve(buf);
        let got = conn.read_buf(buf).await.map_err(|e| e.to_string())?;
        if got == 0 {
            return Err(format!(
                "unexpected EOF: connection closed after {} of {n} body bytes",
                buf.len()
            ));
        }
    }
    if buf.len() > n {
        return Err("response longer than its Content-Length".into());
    }
    Ok(())
}

async fn read_to_end(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: u64,
    err: &impl Fn(String) -> ScrapeError,
) -> Result<(), ScrapeError> {
    loop {
        if limit > 0 && buf.len() as u64 > limit {
            return Err(ScrapeError::BodySizeLimit(limit));
        }
        reserve(buf);
        let got = conn.read_buf(buf).await.map_err(|e| err(e.to_string()))?;
        if got == 0 {
            return Ok(());
        }
    }
}

/// Chunked decoding in place: decoded bytes are compacted to the front of
/// `buf` while reading. Returns whether the connection may be reused.
async fn read_chunked(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: u64,
    err: &impl Fn(String) -> ScrapeError,
) -> Result<bool, ScrapeError> {
    let mut d = ChunkDecoder::default();
    loop {
        match d.decode(buf).map_err(err)? {
            true => {
                let extra = buf.len() - d.read;
                buf.truncate(d.write);
                return Ok(extra == 0);
            }
            false => {
                if limit > 0 && d.write as u64 > limit {
                    return Err(ScrapeError::BodySizeLimit(limit));
                }
            }
        }
        reserve(buf);
        let got = conn.read_buf(buf).await.map_err(|e| err(e.to_string()))?;
        if got == 0 {
            return Err(err("unexpected EOF in chunked body".into()));
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// In chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
}

/// In-place chunked decoder: `buf[..write]` is decoded body, `buf[read..]`
/// is not yet looked at.
#[derive(Debug, Default)]
struct ChunkDecoder {
    state: ChunkState,
    read: usize,
    write: usize,
}

impl ChunkDecoder {
    /// Decodes what `buf` holds; true once the body is complete.
    fn decode(&mut self, buf: &mut [u8]) -> Result<bool, String> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(nl) = memchr(b'\n', &buf[self.read..]) else {
                        if buf.len() - self.read > 4096 {
                            return Err("chunk size line too long".into());
                        }
                        return Ok(false);
                    };
                    let line = &buf[self.read..self.read + nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let hex = line
                        .split(|&b| b == b';')
                        .next()
                        .unwrap_or(b"")
                        .trim_ascii();
                    let size = std::str::from_utf8(hex)
                        .ok()
                        .filter(|s| !s.is_empty() && s.len() <= 15)
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| "malformed chunk size".to_string())?;
                    self.read += nl + 1;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let avail = (buf.len() - self.read) as u64;
                    if avail == 0 {
                        return Ok(false);
                    }
                    let n = avail.min(left) as usize;
                    buf.copy_within(self.read..self.read + n, self.write);
                    self.read += n;
                    self.write += n;
                    self.state = if n as u64 == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                }
                ChunkState::DataEnd => {
                    let rest = &buf[self.read..];
                    if rest.starts_with(b"\r\n") {
                        self.read += 2;
                    } else if rest.starts_with(b"\n") {
                        self.read += 1;
                    } else if rest.is_empty() || rest == b"\r" {
                        return Ok(false);
                    } else {
                        return Err("missing CRLF after chunk data".into());
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(nl) = memchr(b'\n', &buf[self.read..]) else {
                        if buf.len() - self.read > MAX_HEAD {
                            return Err("chunked trailer too long".into());
                        }
                        return Ok(false);
                    };
                    let line = &buf[self.read..self.read + nl];
                    self.read += nl + 1;
                    if line.is_empty() || line == b"\r" {
                        return Ok(true);
                    }
                }
            }
        }
    }
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&x| x == b)
}

enum GzError {
    Limit,
    Bad(String),
}

/// Replaces the gzip body in `buf` by its decoded bytes (at most `limit`, 0: no limit).
fn gunzip(buf: &mut Vec<u8>, scratch: &mut Vec<u8>, limit: u64) -> Result<(), GzError> {
    std::mem::swap(buf, scratch);
    buf.clear();
    let res = (|| {
        let mut d = flate2::read::MultiGzDecoder::new(scratch.as_slice());
        let mut tmp = [0u8; 16 << 10];
        loop {
            let n = d.read(&mut tmp).map_err(|e| GzError::Bad(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            if limit > 0 && (buf.len() + n) as u64 > limit {
                return Err(GzError::Limit);
            }
            buf.extend_from_slice(&tmp[..n]);
        }
    })();
    scratch.clear();
    if scratch.capacity() > 1 << 20 {
        *scratch = Vec::new();
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(parts: &[&[u8]]) -> Result<(Vec<u8>, bool), String> {
        let mut d = ChunkDecoder::default();
        let mut buf = Vec::new();
        for p in parts {
            buf.extend_from_slice(p);
            if d.decode(&mut buf)? {
                let extra = buf.len() - d.read;
                buf.truncate(d.write);
                return Ok((buf, extra == 0));
            }
        }
        Err("incomplete".into())
    }

    #[test]
    fn chunked_in_place_across_reads() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            let (out, clean) = decode_all(&[a, b]).unwrap();
            assert_eq!(out, b"hello, world", "split at {split}");
            assert!(clean);
        }
        let mut bytewise: Vec<&[u8]> = Vec::new();
        for i in 0..body.len() {
            bytewise.push(&body[i..i + 1]);
        }
        assert_eq!(decode_all(&bytewise).unwrap().0, b"hello, world");
    }

    #[test]
    fn chunked_rejects_garbage() {
        assert!(decode_all(&[b"zz\r\nhello\r\n0\r\n\r\n"]).is_err());
        assert!(decode_all(&[b"5\r\nhelloXX0\r\n\r\n"]).is_err());
    }

    #[test]
    fn head_parsing() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.status, h.content_length, h.keep_alive),
            (200, Some(5), true)
        );
        assert_eq!(h.len, 64);
        assert_eq!(h.content_type.as_deref(), Some("text/plain"));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn request_head_is_serialised_once() {
        let u = reqwest::Url::parse("http://127.0.0.1:9100/metrics?a=b").unwrap();
        let c = Http1Client::new(&u, &[("User-Agent", "Koban/x")]).unwrap();
        assert_eq!(
            String::from_utf8(c.request).unwrap(),
            "GET /metrics?a=b HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: Koban/x\r\nAccept-Encoding: gzip\r\n\r\n"
        );
        let u = reqwest::Url::parse("https://h/metrics").unwrap();
        assert!(Http1Client::new(&u, &[]).is_none());
    }

    #[test]
    fn gzip_bodies_decode_within_limit() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&b"a 1\n".repeat(1000)).unwrap();
        let gz = e.finish().unwrap();
        let mut buf = gz.clone();
        let mut scratch = Vec::new();
        assert!(gunzip(&mut buf, &mut scratch, 0).is_ok());
        assert_eq!(buf.len(), 4000);
        let mut buf = gz;
        assert!(matches!(
            gunzip(&mut buf, &mut scratch, 100),
            Err(GzError::Limit)
        ));
    }
}
