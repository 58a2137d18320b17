use std::io::{Read, Write};
use std::net::TcpStream;

use crate::process::{ADMIN_TOKEN, ServerProcess};

/// SIGTERM while a request is being received: the request completes and is stored,
/// then the server exits cleanly.
#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start(&database.url);
        let address = server.url.trim_start_matches("http://").to_owned();
        let body = br#"{"key": "in-flight"}"#;
        let mut stream = TcpStream::connect(&address).unwrap();
        // `Expect: 100-continue` makes the server say when the handler is reading the
        // body: from then on the request is in flight, without guessing with sleeps.
        write!(
            stream,
            "POST /api/v1/projects/default/flags HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .unwrap();
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).unwrap();
        assert!(String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100 Continue"));
        server.signal("TERM");
        stream.write_all(body).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
        let status = server.wait();
        assert!(status.success(), "{status:?}");

        // The change survived: a new server on the same store has it.
        let again = ServerProcess::start(&database.url);
        let flag = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/projects/default/flags/in-flight",
                again.url
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(flag.status(), 200);
    }
}
