import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    """The native command, built by `cargo xtask test` (PREFSCOPE_CLI), or built here."""
    path = os.environ.get("PREFSCOPE_CLI")
    if path:
        return path
    subprocess.run(["cargo", "build", "-q", "-p", "prefscope-cli"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / "prefscope")


@pytest.fixture(scope="session")
def root():
    return ROOT


FIXTURE = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """The transformers-layout fixture model (random weights) with its tokenizer, as a
    downloaded Hub repository is laid out."""
    import shutil

    out = tmp_path_factory.mktemp("model")
    for name in ("config.json", "preprocessor_config.json", "model.safetensors"):
        shutil.copy(FIXTURE / "clip" / "hf-quickgelu-f32" / name, out / name)
    shutil.copy(FIXTURE / "clip" / "tokenizer.json", out / "tokenizer.json")
    return out


def run_cli(cli, *args):
    """The command's JSON output."""
    import json

    done = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
