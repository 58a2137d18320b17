//! A Server-Sent Events parser, fed with whatever chunks the network delivers.

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: String,
    pub(crate) id: Option<String>,
    pub(crate) data: String,
}

/// Collects bytes until a blank line ends an event. Chunks may split lines, and even
/// characters, anywhere.
#[derive(Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, separator)) = find_blank_line(&self.buffer) {
            let block: Vec<u8> = self.buffer.drain(..end + separator).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block[..end])) {
                events.push(event);
            }
        }
        events
    }
}

/// Where the first blank line is, and how long its line ending is.
fn find_blank_line(buffer: &[u8]) -> Option<(usize, usize)> {
    for index in 0..buffer.len() {
        for separator in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if buffer[index..].starts_with(separator) {
                return Some((index, separator.len()));
            }
        }
    }
    None
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".to_owned(),
        id: None,
        data: String::new(),
    };
    let mut has_data = false;
    for line in block.lines() {
        // Lines that start with a colon are comments, such as keep-alives.
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => event.event = value.to_owned(),
            "id" => event.id = Some(value.to_owned()),
            "data" => {
                if has_data {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    has_data.then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_anywhere() {
        let stream = b": keep-alive\n\nevent: snapshot\nid: 7\ndata: {\"a\":\ndata: 1}\n\nevent: snapshot\r\nid: 8\r\ndata: {}\r\n\r\n";
        for split in 0..stream.len() {
            let mut parser = SseParser::default();
            let mut events = parser.push(&stream[..split]);
            events.extend(parser.push(&stream[split..]));
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        event: "snapshot".into(),
                        id: Some("7".into()),
                        data: "{\"a\":\n1}".into()
                    },
                    SseEvent {
                        event: "snapshot".into(),
                        id: Some("8".into()),
                        data: "{}".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn an_unfinished_event_waits_for_its_end() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"event: snapshot\ndata: {").is_empty());
        assert_eq!(parser.push(b"}\n\n").len(), 1);
    }
}
