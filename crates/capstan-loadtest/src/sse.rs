//! One SDK stream over a raw HTTP/1.1 connection: far cheaper per connection than a
//! general HTTP client, which matters at ten thousand of them.
//!
//! It understands just enough of HTTP/1.1 (a status line, `Transfer-Encoding: chunked`)
//! and of Server-Sent Events (the `event` and `id` fields) to tell when a snapshot
//! arrives and which revision it carries. The snapshot's JSON is not parsed.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most a response's headers may take; the server's are a few hundred bytes.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How much room each read asks for. Small, so ten thousand idle streams stay cheap for
/// the load generator too; a larger snapshot simply takes several reads.
const READ_SIZE: usize = 2048;

/// The request line and headers of a stream request, built once and sent by every
/// connection.
pub(crate) fn stream_request(address: SocketAddr, sdk_key: &str) -> Vec<u8> {
    format!(
        "GET /api/v1/sdk/stream HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {sdk_key}\r\n\
         Accept: text/event-stream\r\n\r\n"
    )
    .into_bytes()
}

/// A connected stream whose response headers have been read.
pub(crate) struct SnapshotStream {
    socket: TcpStream,
    /// Bytes received and not yet decoded.
    received: Vec<u8>,
    framing: Framing,
    /// Decoded body bytes not yet read as lines.
    body: Vec<u8>,
    event: PendingEvent,
}

/// How the response body is framed.
enum Framing {
    /// `Transfer-Encoding: chunked`, with the decoder's position.
    Chunked(Chunk),
    /// The body runs until the connection closes.
    UntilClose,
    /// The last chunk has come: the server ended the response.
    Ended,
}

enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many data bytes to go.
    Data(usize),
    /// Expecting the CRLF that closes a chunk's data.
    DataEnd,
}

/// The fields of the Server-Sent Event being read.
#[derive(Default)]
struct PendingEvent {
    is_snapshot: bool,
    id: Option<i64>,
}

impl SnapshotStream {
    /// Connects, sends the request and reads the response headers; anything but
    /// `200 OK` is an error that quotes the status line.
    pub(crate) async fn open(address: SocketAddr, request: &[u8]) -> anyhow::Result<Self> {
        let mut socket = TcpStream::connect(address)
            .await
            .with_context(|| format!("failed to connect to {address}"))?;
        socket
            .set_nodelay(true)
            .context("failed to set TCP_NODELAY")?;
        socket
            .write_all(request)
            .await
            .context("failed to send the stream request")?;
        let mut received = Vec::with_capacity(READ_SIZE);
        let header_end = loop {
            if let Some(end) = find(&received, b"\r\n\r\n") {
                break end;
            }
            if received.len() > MAX_HEADER_BYTES {
                bail!("the response headers are longer than {MAX_HEADER_BYTES} bytes");
            }
            received.reserve(READ_SIZE);
            let read = socket
                .read_buf(&mut received)
                .await
                .context("failed to read the response headers")?;
            if read == 0 {
                bail!("the server closed the connection before answering");
            }
        };
        let headers = String::from_utf8_lossy(&received[..header_end]).into_owned();
        let status_line = headers.lines().next().unwrap_or_default();
        if status_line.split_whitespace().nth(1) != Some("200") {
            bail!("the server refused the stream: {status_line}");
        }
        let chunked = headers.lines().skip(1).any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("transfer-encoding")
                    && value.to_ascii_lowercase().contains("chunked")
            })
        });
        received.drain(..header_end + 4);
        Ok(SnapshotStream {
            socket,
            received,
            framing: if chunked {
                Framing::Chunked(Chunk::Size)
            } else {
                Framing::UntilClose
            },
            body: Vec::new(),
            event: PendingEvent::default(),
        })
    }

    /// Waits for the next `snapshot` event and returns its revision (the event's id).
    /// Keep-alive comments and other events are skipped.
    pub(crate) async fn next_snapshot(&mut self) -> anyhow::Result<i64> {
        loop {
            self.unframe()?;
            if let Some(revision) = self.next_event() {
                return Ok(revision);
            }
            if matches!(self.framing, Framing::Ended) {
                bail!("the server ended the stream");
            }
            self.received.reserve(READ_SIZE);
            let read = self
                .socket
                .read_buf(&mut self.received)
                .await
                .context("failed to read the stream")?;
            if read == 0 {
                bail!("the server closed the stream");
            }
        }
    }

    /// Moves the body bytes received so far from `received` to `body`, taking off the
    /// chunked framing.
    fn unframe(&mut self) -> anyhow::Result<()> {
        let mut position = 0;
        loop {
            let rest = &self.received[position..];
            if rest.is_empty() {
                break;
            }
            match &mut self.framing {
                Framing::Ended => break,
                Framing::UntilClose => {
                    self.body.extend_from_slice(rest);
                    position += rest.len();
                }
                Framing::Chunked(Chunk::Size) => {
                    let Some(end) = find(rest, b"\r\n") else {
                        break;
                    };
                    let size = parse_chunk_size(&rest[..end])?;
                    if size == 0 {
                        self.framing = Framing::Ended;
                        break;
                    }
                    self.framing = Framing::Chunked(Chunk::Data(size));
                    position += end + 2;
                }
                Framing::Chunked(Chunk::Data(remaining)) => {
                    let take = (*remaining).min(rest.len());
                    *remaining -= take;
                    if *remaining == 0 {
                        self.framing = Framing::Chunked(Chunk::DataEnd);
                    }
                    self.body.extend_from_slice(&rest[..take]);
                    position += take;
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if rest.len() < 2 {
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        bail!("a chunk does not end with CRLF");
                    }
                    self.framing = Framing::Chunked(Chunk::Size);
                    position += 2;
                }
            }
        }
        self.received.drain(..position);
        Ok(())
    }

    /// Reads whole lines of the body up to the end of the first snapshot event among
    /// them, and returns its revision; the rest stays for the next call, so the caller
    /// learns of each snapshot as soon as it is decoded.
    fn next_event(&mut self) -> Option<i64> {
        let mut position = 0;
        let mut found = None;
        while let Some(newline) = self.body[position..].iter().position(|&byte| byte == b'\n') {
            let line = position..position + newline;
            position += newline + 1;
            found = self.event.take_line(&self.body[line]);
            if found.is_some() {
                break;
            }
        }
        self.body.drain(..position);
        found
    }
}

impl PendingEvent {
    /// Takes one line of the event stream; returns the revision when the line ends a
    /// snapshot event.
    fn take_line(&mut self, line: &[u8]) -> Option<i64> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            let event = std::mem::take(self);
            return event.id.filter(|_| event.is_snapshot);
        }
        if line.starts_with(b":") {
            return None;
        }
        let (name, value) = match line.iter().position(|&byte| byte == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => self.is_snapshot = value == b"snapshot",
            b"id" => {
                self.id = std::str::from_utf8(value)
                    .ok()
                    .and_then(|id| id.trim().parse().ok());
            }
            _ => {}
        }
        None
    }
}

fn parse_chunk_size(line: &[u8]) -> anyhow::Result<usize> {
    let text = std::str::from_utf8(line).context("a chunk size is not text")?;
    let digits = text.split(';').next().unwrap_or_default().trim();
    usize::from_str_radix(digits, 16).with_context(|| format!("bad chunk size {digits:?}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// Serves `response` in pieces of `piece` bytes to the first connection.
    async fn serve(response: Vec<u8>, piece: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            for part in response.chunks(piece) {
                socket.write_all(part).await.expect("write");
                socket.flush().await.expect("flush");
                tokio::task::yield_now().await;
            }
        });
        address
    }

    fn chunked(events: &[&str]) -> Vec<u8> {
        let mut response = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                             transfer-encoding: chunked\r\n\r\n"
            .to_vec();
        for event in events {
            response.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
        }
        response.extend_from_slice(b"0\r\n\r\n");
        response
    }

    async fn revisions(response: Vec<u8>, piece: usize) -> (Vec<i64>, String) {
        let address = serve(response, piece).await;
        let mut stream = SnapshotStream::open(address, &stream_request(address, "cps_x"))
            .await
            .expect("open");
        let mut seen = Vec::new();
        loop {
            match stream.next_snapshot().await {
                Ok(revision) => seen.push(revision),
                Err(error) => return (seen, error.to_string()),
            }
        }
    }

    #[tokio::test]
    async fn reads_the_revision_of_every_snapshot_whatever_the_read_sizes() {
        let response = chunked(&[
            "event: snapshot\nid: 7\ndata: {\"revision\":7,\"flags\":{}}\n\n",
            ": keep-alive\n\n",
            "event: other\nid: 99\ndata: x\n\n",
            "event: snapshot\nid: 8\ndata: {\"revision\":8}\n\nevent: snapshot\nid: 9\ndata: {}\n\n",
        ]);
        for piece in [1, 3, 7, 64, 4096] {
            let (seen, end) = revisions(response.clone(), piece).await;
            assert_eq!(seen, vec![7, 8, 9], "read {piece} bytes at a time");
            assert_eq!(end, "the server ended the stream");
        }
    }

    #[tokio::test]
    async fn a_refusal_quotes_the_status_line() {
        let address = serve(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n".to_vec(),
            4096,
        )
        .await;
        let error = SnapshotStream::open(address, &stream_request(address, "cps_x"))
            .await
            .err()
            .expect("refused");
        assert_eq!(
            error.to_string(),
            "the server refused the stream: HTTP/1.1 401 Unauthorized"
        );
    }
}
