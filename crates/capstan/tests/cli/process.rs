use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

pub(crate) const ADMIN_TOKEN: &str = "cps_cli_test_admin_0123456789abcdefghijk";

/// A `capstan serve` process on port 0.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl ServerProcess {
    pub(crate) fn start(database: &str) -> ServerProcess {
        ServerProcess::start_at(database, "127.0.0.1:0")
    }

    /// Starts on a given address, to come back where clients expect the server.
    pub(crate) fn start_at(database: &str, listen: &str) -> ServerProcess {
        ServerProcess::start_with(database, listen, &[])
    }

    /// Starts with extra `capstan serve` options.
    pub(crate) fn start_with(database: &str, listen: &str, options: &[&str]) -> ServerProcess {
        let mut arguments = vec!["--listen", listen, "--database", database];
        arguments.extend_from_slice(options);
        ServerProcess::serve(&arguments)
    }

    /// `capstan serve` with exactly these options.
    pub(crate) fn serve(options: &[&str]) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_capstan"))
            .arg("serve")
            .args(options)
            .env("CAPSTAN_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
            .env("CAPSTAN_LOG", "warn")
            .env_remove("CAPSTAN_LISTEN")
            .env_remove("CAPSTAN_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("failed to start capstan serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The server prints its address once it accepts connections.
        let url = loop {
            let line = lines
                .next()
                .expect("capstan serve exited before listening")
                .expect("stdout");
            if let Some(url) = line.strip_prefix("Listening on ") {
                break url.to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServerProcess { child, url }
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("failed to wait for capstan serve")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a CLI command against `server` and returns its output.
pub(crate) fn cli(server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(args)
        .env("CAPSTAN_SERVER", server)
        .env("CAPSTAN_TOKEN", ADMIN_TOKEN)
        .env_remove("CAPSTAN_PROJECT")
        .output()
        .expect("failed to run capstan")
}

/// Runs a CLI command that must succeed, and returns its stdout.
pub(crate) fn ok(server: &str, args: &[&str]) -> String {
    let output = cli(server, args);
    assert!(
        output.status.success(),
        "capstan {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}
