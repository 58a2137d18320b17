//! The SDK against a server that misbehaves: broken stream messages, a truncated
//! snapshot. The SDK must keep its last good configuration and say what went wrong.
//! The server here is a few lines over a TCP socket, so the test decides every byte.

use std::time::Duration;

use capstan_sdk::{Client, EvaluationContext, Reason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn document(revision: i64, state: &str) -> String {
    format!(
        r#"{{"project":"default","environment":"production","revision":{revision},"types":{{"f":"boolean"}},"flags":{{"f":{{"state":"{state}","variants":{{"on":true,"off":false}},"defaultVariant":"on"}}}}}}"#
    )
}

async fn read_request(stream: &mut TcpStream) -> String {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        request.push(byte[0]);
    }
    String::from_utf8_lossy(&request).into_owned()
}

/// Serves the configuration, and streams whatever the test sends down `frames`.
async fn fake_server(mut frames: mpsc::UnboundedReceiver<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let request = read_request(&mut stream).await;
            if request.starts_with("GET /api/v1/sdk/config") {
                let body = document(1, "ENABLED");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            } else if request.starts_with("GET /api/v1/sdk/stream") {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: identity\r\nconnection: close\r\n\r\n")
                    .await;
                while let Some(frame) = frames.recv().await {
                    if stream.write_all(frame.as_bytes()).await.is_err() {
                        return;
                    }
                }
                return;
            } else {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            }
        }
    });
    format!("http://{address}")
}

fn user() -> EvaluationContext {
    EvaluationContext::new(Some("u".into()), Default::default())
}

/// Waits (ten seconds at most: past that the test has failed) for the client's status to
/// report an error containing `text`.
async fn error_reported(client: &Client, text: &str) {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            // Subscribe before looking, so a change between the two is not missed.
            let changed = client.status_changed();
            if client
                .status()
                .last_error
                .is_some_and(|error| error.contains(text))
            {
                return;
            }
            changed.await;
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no error containing {text:?}: {:?}",
        client.status()
    );
}

#[tokio::test]
async fn broken_stream_messages_leave_the_last_good_configuration() {
    let (frames, receiver) = mpsc::unbounded_channel();
    let server = fake_server(receiver).await;
    let client = Client::builder(&server, "cps_key")
        .track_exposures(false)
        .build()
        .await;
    assert_eq!(client.status().revision, Some(1));
    assert!(client.bool_value("f", &user(), false));

    // Not JSON at all.
    frames
        .send("event: snapshot\nid: 2\ndata: {this is not json\n\n".to_owned())
        .unwrap();
    error_reported(&client, "not valid JSON").await;
    assert_eq!(client.status().revision, Some(1));
    assert!(client.bool_value("f", &user(), false));

    // A snapshot cut off in the middle.
    let whole = document(3, "DISABLED");
    frames
        .send(format!(
            "event: snapshot\nid: 3\ndata: {}\n\n",
            &whole[..whole.len() / 2]
        ))
        .unwrap();
    error_reported(&client, "EOF").await;
    assert_eq!(client.status().revision, Some(1));

    // A snapshot that parses but does not compile.
    frames
        .send(format!(
            "event: snapshot\nid: 4\ndata: {}\n\n",
            document(4, "ENABLED").replace("\"on\"}}}", "\"maybe\"}}}")
        ))
        .unwrap();
    error_reported(&client, "does not compile").await;
    assert_eq!(client.status().revision, Some(1));

    // And then a good one is taken.
    frames
        .send(format!(
            "event: snapshot\nid: 5\ndata: {}\n\n",
            document(5, "DISABLED")
        ))
        .unwrap();
    assert!(client.wait_for_revision(5, Duration::from_secs(10)).await);
    assert_eq!(
        client.bool_details("f", &user(), true).reason,
        Reason::Disabled
    );
}
