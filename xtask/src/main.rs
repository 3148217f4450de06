//! `cargo xtask demo | test | bench | fixtures`: the project's tasks, in Rust so they run the
//! same on every machine. No dependencies: each task is a sequence of commands.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Crates built for `wasm32-unknown-unknown` as part of `test` (everything the browser loads).
const BROWSER_CRATES: &[&str] = &["prefscope-core"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

type Result<T = ()> = std::result::Result<T, String>;

/// Runs a command in the workspace root, echoing it; fails with its name on a non-zero exit.
fn run(program: &str, args: &[&str]) -> Result {
    run_with(program, args, &[])
}

/// [`run`] with extra environment variables.
fn run_with(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result {
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("$ {}{program} {}", shown.concat(), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn cargo(args: &[&str]) -> Result {
    run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), args)
}

/// The browser build, with warnings as errors (clippy only sees the native cfg).
fn cargo_wasm(krate: &str) -> Result {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = ["build", "--locked", "--target", "wasm32-unknown-unknown", "-p", krate];
    run_with(&program, &args, &[("RUSTFLAGS", "-Dwarnings")])
}

/// Installs the wasm target when rustup is there and the target is not.
fn ensure_wasm_target() -> Result {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if installed {
        Ok(())
    } else {
        run("rustup", &["target", "add", "wasm32-unknown-unknown"])
    }
}

/// Everything a change must pass.
fn test() -> Result {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    cargo(&["test", "--workspace", "--locked"])?;
    ensure_wasm_target()?;
    for krate in BROWSER_CRATES {
        cargo_wasm(krate)?;
    }
    Ok(())
}

/// Benchmarks with their baselines measured in the same run; prints tables, asserts nothing.
fn bench() -> Result {
    cargo(&["bench", "--locked", "-p", "prefscope-cli", "--bench", "dpo_pairs"])
}

/// The demo of what exists today: the native `prefscope demo` on the bundled export.
fn demo() -> Result {
    cargo(&["run", "--locked", "--release", "-p", "prefscope-cli", "--", "demo"])
}

/// Regenerates tests/fixtures from the reference implementations (needs PyPI access once).
fn fixtures() -> Result {
    let root = root();
    let venv = root.join(".venv-reference");
    if !venv.join("bin/python").exists() {
        let script = root.join("../shared/tools/reference-venv.sh");
        run("bash", &[script.to_str().ok_or("path")?, venv.to_str().ok_or("path")?])?;
    }
    let pip = venv.join("bin/pip");
    let legacy = root.join(".trl028");
    if !legacy.join("trl").exists() {
        run(
            pip.to_str().ok_or("path")?,
            &["install", "-q", "--no-deps", "--target", legacy.to_str().ok_or("path")?, "trl==0.28.0"],
        )?;
    }
    // The image-preprocessing reference: Pillow 12 (its pass order is the one every release
    // before 13 used), beside the venv's own Pillow.
    let pillow = root.join(".pillow12");
    if !pillow.join("PIL").exists() {
        run(
            pip.to_str().ok_or("path")?,
            &["install", "-q", "--no-deps", "--target", pillow.to_str().ok_or("path")?, "pillow==12.3.0"],
        )?;
    }
    run(venv.join("bin/python").to_str().ok_or("path")?, &["tests/fixtures/generate.py"])
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "test" => test(),
        "bench" => bench(),
        "demo" => demo(),
        "fixtures" => fixtures(),
        _ => {
            eprintln!("usage: cargo xtask <test|bench|demo|fixtures>");
            eprintln!("  test      fmt, clippy, every workspace test, wasm build of the browser crates");
            eprintln!("  bench     benchmarks beside their baselines (numpy when .venv-reference exists)");
            eprintln!("  demo      builds and runs the demo on bundled data");
            eprintln!("  fixtures  regenerates tests/fixtures from TRL, torchmetrics, numpy (Python venv)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}
