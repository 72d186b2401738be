//! Running the `fwledger` binary from tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// The `fwledger` command with `--home HOME`, ignoring the caller's ledger/store settings.
pub fn fwledger(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fwledger"));
    cmd.arg("--home")
        .arg(home)
        .env_remove("FWLEDGER_LEDGER")
        .env_remove("FWLEDGER_STORE");
    cmd
}

/// Runs `fwledger ARGS` to completion.
pub fn run(home: &Path, args: &[&str]) -> Output {
    fwledger(home).args(args).output().unwrap()
}

/// Runs `fwledger ARGS`, which must succeed, and returns its standard output.
pub fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "fwledger {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A free TCP port on 127.0.0.1, as text for command lines.
pub fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
        .to_string()
}
