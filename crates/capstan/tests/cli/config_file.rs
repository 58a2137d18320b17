//! `capstan serve --config FILE`: settings from a TOML file, under flags and variables.

use std::process::Command;

use crate::process::{ADMIN_TOKEN, ServerProcess, ok};

#[test]
fn a_config_file_sets_what_flags_do_not() {
    let directory = tempfile::tempdir().unwrap();
    let from_file = directory.path().join("from-file.db");
    let from_flag = directory.path().join("from-flag.db");
    let file = directory.path().join("capstan.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\nrate-limit-per-second = 0\nscheduler_interval_ms = 500\n",
            from_file.display()
        ),
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();

    // Everything from the file.
    let server = ServerProcess::serve(&["--config", &file]);
    assert!(ok(&server.url, &["env", "list"]).contains("production"));
    assert!(from_file.exists(), "the file's database is used");
    drop(server);

    // A flag wins over the file.
    let server = ServerProcess::serve(&[
        "--config",
        &file,
        "--database",
        &from_flag.to_string_lossy(),
    ]);
    ok(&server.url, &["env", "list"]);
    assert!(from_flag.exists(), "the flag's database is used");
    drop(server);

    // A setting the server does not have is an error that names it.
    let bad = directory.path().join("bad.toml");
    std::fs::write(&bad, "speed = 3\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["serve", "--config", &bad.to_string_lossy()])
        .env("CAPSTAN_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown setting \"speed\""), "{stderr}");
}
