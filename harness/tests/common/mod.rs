//! Helpers the integration tests share: where the repository is, and running the `xdplab`
//! binary as a user would.

// Each test crate compiles this module and uses only part of it.
#![allow(
    dead_code,
    reason = "each test file uses a different part of these helpers"
)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The workspace root (scenarios/, ebpf/, ...).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `xdplab ARGS` from the workspace root and waits for it.
pub fn xdplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdplab"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("xdplab runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
