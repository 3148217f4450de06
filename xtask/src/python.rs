//! The Python package's suite and benchmark. A virtual environment in target/pyenv holds the
//! pinned requirements (python/requirements: torch and TRL without their CUDA extras, as the
//! reference venv has them; Ray Data, pyarrow, pytest, maturin), reinstalled when those files
//! change; the package goes in with `pip install ./python`, the README's command (built with the
//! dev profile here, so it shares the workspace's artifacts); pytest runs python/tests.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{root, run, run_with, Result};

/// The requirement files, in install order, with whether pip resolves their dependencies.
const REQUIREMENTS: [(&str, bool); 2] =
    [("python/requirements/torch-nodeps.txt", false), ("python/requirements/test.txt", true)];

/// The whole Python suite may not take longer than this (Ray or torch hanging must not eat CI).
const SUITE_LIMIT: Duration = Duration::from_secs(20 * 60);

fn venv() -> PathBuf {
    root().join("target/pyenv")
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// target/pyenv with the pinned requirements; rebuilt when python/requirements changes.
pub fn ensure_venv() -> Result<PathBuf> {
    let venv = venv();
    let stamp = venv.join("prefscope-requirements.txt");
    let mut wanted = String::new();
    for (file, _) in REQUIREMENTS {
        wanted += &std::fs::read_to_string(root().join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) && venv.join("bin/python").exists() {
        return Ok(venv);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(&python, &["-m", "venv", "--clear", path_str(&venv)?])?;
    let pip = venv.join("bin/pip");
    let pip = path_str(&pip)?;
    run(pip, &["install", "-q", "--upgrade", "pip"])?;
    for (file, deps) in REQUIREMENTS {
        let mut args = vec!["install", "-q", "-r", file];
        if !deps {
            args.push("--no-deps");
        }
        run(pip, &args)?;
    }
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(venv)
}

/// Environment that puts the venv first, as `activate` does.
fn activated(venv: &Path) -> Result<Vec<(&'static str, String)>> {
    let path = std::env::var("PATH").unwrap_or_default();
    Ok(vec![("VIRTUAL_ENV", path_str(venv)?.to_string()), ("PATH", format!("{}:{path}", path_str(&venv.join("bin"))?))])
}

/// Installs the package from python/ with pip, built with `profile` (dev or release).
fn install(venv: &Path, profile: &str) -> Result {
    let pip = venv.join("bin/pip");
    let mut env = activated(venv)?;
    env.push(("MATURIN_PEP517_ARGS", format!("--profile {profile}")));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_with(path_str(&pip)?, &["install", "-q", "--force-reinstall", "--no-deps", "./python"], &env)
}

/// `pip install ./python` and pytest over python/tests (TRL, Ray on a local cluster, the
/// package against the command), under [`SUITE_LIMIT`].
pub fn test() -> Result {
    let venv = ensure_venv()?;
    crate::cargo(&["build", "--locked", "-p", "prefscope-cli"])?;
    install(&venv, "dev")?;
    let cli = root().join("target/debug/prefscope");
    let mut env = activated(&venv)?;
    env.extend([("PREFSCOPE_CLI", path_str(&cli)?.to_string()), ("HF_HUB_OFFLINE", "1".into())]);
    let python = venv.join("bin/python");
    let args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "python/tests"];
    eprintln!("$ {} {}", python.display(), args.join(" "));
    // Its own process group, so that a stop also ends what it started (Ray's raylet and workers).
    let mut child = Command::new(&python)
        .process_group(0)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(root())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() { Ok(()) } else { Err(format!("pytest failed ({status})")) };
        }
        if start.elapsed() > SUITE_LIMIT {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            return Err(format!("pytest ran past {} minutes and was stopped", SUITE_LIMIT.as_secs() / 60));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `prefscope.dpo` on a million pairs from Python beside numpy, in the same run (release build).
pub fn bench() -> Result {
    let venv = ensure_venv()?;
    install(&venv, "release")?;
    let python = venv.join("bin/python");
    run(path_str(&python)?, &["python/bench/dpo_1m.py"])
}
