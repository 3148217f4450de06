//! What the command's test files share: running the built binary and reading its output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository's tests/fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

pub fn prefscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prefscope")).args(args).output().expect("run prefscope")
}

/// A successful run's stdout as JSON (its stderr in the message otherwise).
pub fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// The stderr of a run that must fail with the command's input-error status, 2.
pub fn failure(args: &[&str]) -> String {
    let out = prefscope(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
