"""prefscope.dpo against the command on the same files, Arrow in and out, located errors."""

import json
import math

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

import prefscope
from conftest import FIXTURE, run_cli

SAMPLE = FIXTURE / "dpo_sample.jsonl"


def close(a, b, tol=1e-12):
    if a is None or b is None:  # NaN is null in the command's JSON
        return (a is None or math.isnan(a)) and (b is None or math.isnan(b))
    return abs(a - b) <= tol * max(1.0, abs(b))


def assert_same_report(got, want):
    assert set(got["metrics"]) == set(want["metrics"])
    for k, v in want["metrics"].items():
        assert close(got["metrics"][k], v), k
    rows = got["pairs"].to_pylist()
    assert len(rows) == len(want["pairs"])
    for g, w in zip(rows, want["pairs"]):
        assert g["id"] == w["id"]
        for k in ("chosen_reward", "rejected_reward", "margin", "loss"):
            assert close(g[k], w[k]), k


@pytest.mark.parametrize("options", [
    {"loss": "sigmoid"},
    {"loss": "sigmoid,ipo", "beta": 0.2, "weights": [1.0, 0.5]},
    {"loss": "robust", "label_smoothing": 0.1},
    {"loss": "sigmoid", "f_divergence": "js_divergence"},
    {"loss": "simpo", "beta": 2.0},
])
def test_dpo_equals_the_command(cli, options):
    args = ["dpo", "--input", SAMPLE, "--device", "cpu", "--loss", options["loss"]]
    for flag in ("beta", "label_smoothing", "f_divergence"):
        if flag in options:
            args += [f"--{flag.replace('_', '-')}", options[flag]]
    if "weights" in options:
        args += ["--weights", ",".join(map(str, options["weights"]))]
    want = run_cli(cli, *args)
    assert_same_report(prefscope.dpo(SAMPLE, device="cpu", **options), want)
    assert_same_report(prefscope.dpo(str(SAMPLE), device="cpu", **options), want)


def test_arrow_tables_parquet_csv_and_pandas(cli, tmp_path):
    want = run_cli(cli, "dpo", "--input", SAMPLE, "--device", "cpu")
    table = pajson.read_json(SAMPLE)
    assert_same_report(prefscope.dpo(table, device="cpu"), want)
    # A RecordBatchReader streams; batches of 7 rows keep row numbers across batches.
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    assert_same_report(prefscope.dpo(reader, device="cpu"), want)
    pq.write_table(table, tmp_path / "pairs.parquet", row_group_size=5)
    assert_same_report(prefscope.dpo(tmp_path / "pairs.parquet", device="cpu"), want)
    flat = table.drop_columns([c for c in table.column_names if c.endswith("_tokens") or "token" in c])
    pacsv.write_csv(flat, tmp_path / "pairs.csv")
    want_flat = run_cli(cli, "dpo", "--input", tmp_path / "pairs.csv", "--device", "cpu")
    assert_same_report(prefscope.dpo(tmp_path / "pairs.csv", device="cpu"), want_flat)
    assert_same_report(prefscope.dpo(flat.to_pandas(), device="cpu"), want_flat)
    datasets = pytest.importorskip("datasets")
    assert_same_report(prefscope.dpo(datasets.Dataset(flat), device="cpu"), want_flat)


def test_pairs_come_back_as_arrow(cli):
    report = prefscope.dpo(SAMPLE, device="cpu")
    pairs = report["pairs"]
    assert isinstance(pairs, pa.Table)
    assert pairs.column_names == ["id", "chosen_reward", "rejected_reward", "margin", "loss"]
    assert pairs.schema.field("margin").type == pa.float64()


def test_ranked_lists(cli):
    for loss, path in [("pro", "pro_input.jsonl"), ("smpo", "smpo_input.jsonl"), ("rankdpo", "rankdpo_input.jsonl")]:
        want = run_cli(cli, "dpo", "--input", FIXTURE / path, "--loss", loss)
        got = prefscope.dpo(FIXTURE / path, loss=loss)
        assert set(got["metrics"]) == set(want["metrics"])
        for k, v in want["metrics"].items():
            assert close(got["metrics"][k], v), k
    with pytest.raises(prefscope.PrefscopeError, match="ranked lists from a JSON Lines file"):
        prefscope.dpo(pajson.read_json(FIXTURE / "pro_input.jsonl"), loss="pro")


def test_errors_are_located_and_nothing_is_dropped(tmp_path):
    table = pajson.read_json(SAMPLE)
    rows = table.to_pylist()
    rows[5]["policy_chosen_logps"] = float("nan")
    with pytest.raises(prefscope.PrefscopeError, match=r"row 6.*policy_chosen_logps"):
        prefscope.dpo(pa.Table.from_pylist(rows), device="cpu")
    # A row missing a required value is an error naming it, never a dropped row (with
    # per-token arrays a missing sum would be their sum, so they are left out here).
    rows = [{k: v for k, v in r.items() if "token" not in k} for r in table.to_pylist()]
    rows[11]["reference_rejected_logps"] = None
    with pytest.raises(prefscope.PrefscopeError, match=r"^table: row 12, column `reference_rejected_logps`"):
        prefscope.dpo(pa.Table.from_pylist(rows), device="cpu")
    # An optional column of nulls only (Arrow's Null type, as pandas' all-None column arrives)
    # is a column of missing values, not a type error.
    flat = pa.Table.from_pylist(rows[:11])
    report = prefscope.dpo(flat.append_column("chosen_length", pa.nulls(11)), device="cpu")
    assert report["pairs"].num_rows == 11 and "ranking/accuracy_normalized" not in report["metrics"]
    with pytest.raises(prefscope.PrefscopeError, match=r"^table, column `policy_chosen_logps`: required column is missing"):
        prefscope.dpo(pa.Table.from_pylist(rows).drop_columns(["policy_chosen_logps"]), device="cpu")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(SAMPLE.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(prefscope.PrefscopeError, match=r"bad.jsonl: row 2"):
        prefscope.dpo(bad)
    with pytest.raises(prefscope.PrefscopeError, match="label_smoothing must lie in"):
        prefscope.dpo(SAMPLE, label_smoothing=0.7)
    with pytest.raises(prefscope.PrefscopeError, match="beta must be a positive number"):
        prefscope.dpo(SAMPLE, beta=-1.0)
    with pytest.raises(prefscope.PrefscopeError, match="unknown"):
        prefscope.dpo(SAMPLE, loss="sigmoidd")
    with pytest.raises(prefscope.PrefscopeError, match="device"):
        prefscope.dpo(SAMPLE, device="tpu")
    with pytest.raises(prefscope.PrefscopeError, match="expected a path or an Arrow table"):
        prefscope.dpo(42)
    assert issubclass(prefscope.PrefscopeError, ValueError)


def test_shards_combine_exactly(cli):
    from prefscope import _prefscope

    table = pajson.read_json(SAMPLE)
    want = run_cli(cli, "dpo", "--input", SAMPLE, "--device", "cpu", "--loss", "sigmoid,hinge")["metrics"]
    parts = [_prefscope.dpo_shard(table.slice(a, b - a), loss="sigmoid,hinge") for a, b in [(0, 3), (3, 17), (17, table.num_rows)]]
    assert sum(p["pairs"] for p in parts) == table.num_rows
    got = _prefscope.combine_shards(parts)
    assert set(got) == set(want)
    for k, v in want.items():
        assert close(got[k], v, 1e-12), k
    with pytest.raises(prefscope.PrefscopeError, match="`aot` couples the pairs"):
        _prefscope.dpo_shard(table, loss="aot")


def test_the_gil_is_released_while_rust_works():
    import threading

    import numpy as np

    n = 400_000
    rng = np.random.default_rng(0)
    table = pa.table({k: -50 * rng.random(n) for k in (
        "policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps")})
    started, result = threading.Event(), {}

    def work():
        started.set()
        result["report"] = prefscope.dpo(table, device="cpu")

    # With a 1 s switch interval a thread holding the GIL keeps it until it blocks or ends.
    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        spins = 0
        while worker.is_alive():  # runs only while the worker does not hold the GIL
            spins += 1
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert result["report"]["pairs"].num_rows == n
    # Holding the GIL through the call would leave this loop a handful of turns at most.
    assert spins > 10_000, spins


def test_compare_equals_each_report():
    objectives = ["sigmoid", "hinge", "ipo", "aot", "sft", "cdpo", "simpo", "cpo", "orpo", "kto", "bco"]
    got = prefscope.compare(SAMPLE, objectives, beta=0.1, label_smoothing=0.1)
    assert set(got["losses"]) == set(objectives)
    for name in objectives:
        eps = 0.1 if name in ("cdpo", "simpo", "cpo") else 0.0
        if name in ("aot",):
            eps = 0.1
        want = prefscope.dpo(SAMPLE, loss=name, beta=0.1, label_smoothing=eps, device="cpu")["metrics"]["loss"]
        assert close(got["losses"][name], want, 1e-10), name
    with pytest.raises(prefscope.PrefscopeError, match="unknown"):
        prefscope.compare(SAMPLE, ["sigmoid", "nope"])
