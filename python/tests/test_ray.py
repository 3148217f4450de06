"""prefscope.ray on a local Ray cluster (2 CPUs, a small object store): the same rows and
metrics as the command on the same data split into shards."""

import json
import math

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")

import prefscope
import prefscope.ray as pray
from conftest import FIXTURE, ROOT, run_cli

SAMPLE = FIXTURE / "dpo_sample.jsonl"


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    ray.init(num_cpus=2, object_store_memory=96 << 20, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def shards(tmp_path, table, cuts, name="part"):
    folder = tmp_path / "shards"
    folder.mkdir()
    for k, (a, b) in enumerate(zip(cuts, cuts[1:])):
        pq.write_table(table.slice(a, b - a), folder / f"{name}-{k}.parquet", row_group_size=4)
    return folder


@pytest.mark.parametrize("loss", ["sigmoid", "ipo,hinge"])
def test_dpo_metrics_equal_the_command(cli, tmp_path, loss):
    table = pajson.read_json(SAMPLE)
    want = run_cli(cli, "dpo", "--input", SAMPLE, "--device", "cpu", "--loss", loss)
    folder = shards(tmp_path, table, [0, 5, 6, 19, table.num_rows])
    ds = ray.data.read_parquet(str(folder))
    got = pray.dpo_metrics(ds, loss=loss, batch_size=3, concurrency=2, num_cpus=0.5)
    assert set(got) == set(want["metrics"])
    gap = max(abs(got[k] - v) / max(1.0, abs(v)) for k, v in want["metrics"].items())
    print(f"{loss}: largest relative gap to the command's metrics {gap:.1e}")
    for k, v in want["metrics"].items():
        assert abs(got[k] - v) <= 1e-9 * max(1.0, abs(v)), (k, got[k], v)
    pairs = sorted(pray.dpo_pairs(ds, loss=loss, batch_size=7, num_cpus=0.5).take_all(), key=lambda r: r["id"])
    expected = sorted(want["pairs"], key=lambda r: r["id"])
    assert [p["id"] for p in pairs] == [p["id"] for p in expected]
    for p, w in zip(pairs, expected):
        for k in ("chosen_reward", "rejected_reward", "margin", "loss"):
            assert abs(p[k] - w[k]) <= 1e-12 * max(1.0, abs(w[k])), k


def test_batch_coupled_objectives_are_refused(tmp_path):
    ds = ray.data.read_parquet(str(shards(tmp_path, pajson.read_json(SAMPLE), [0, 10, 40])))
    with pytest.raises(Exception, match="`aot` couples the pairs of a batch"):
        pray.dpo_metrics(ds, loss="aot", num_cpus=0.5)
    with pytest.raises(prefscope.PrefscopeError, match="`simpo` averages over the whole batch"):
        pray.dpo_pairs(ds, loss="simpo", num_cpus=0.5)


def scored_rows(rows):
    return sorted(rows, key=lambda r: r["id"])


def assert_rows(got, want):
    got, want = scored_rows(got), scored_rows(want)
    assert [r["id"] for r in got] == [r["id"] for r in want]
    for g, w in zip(got, want):
        for k in ("group", "prompt", "image", "rank"):
            assert g[k] == w[k], (g["id"], k)
        for k in ("score", "relevant", "irrelevant", "reweighted", "probability"):
            assert abs(g[k] - w[k]) <= 1e-5 * max(1.0, abs(w[k])), (g["id"], k, g[k], w[k])


def test_score_manifest_in_groups(cli, model_dir):
    manifest = ROOT / "web" / "tests" / "manifest.csv"
    want = run_cli(cli, "score", "--model", model_dir, "--manifest", manifest, "--preset", "pickscore",
                   "--device", "cpu")["rows"]
    ds = ray.data.read_csv(str(manifest)).repartition(3)
    got = pray.score(ds, model_dir, preset="pickscore", root=manifest.parent, device="cpu", num_cpus=0.5).take_all()
    assert_rows(got, want)


def test_score_pickapic_layout(cli, model_dir, tmp_path):
    images = FIXTURE / "clip" / "images"
    files = ["square24.png", "wide.png", "rotated.jpg", "tall_rgba.png", "grey.png", "square32.png"]
    captions = ["a large red circle in the center", "a small blue square on the left", "a green triangle"]
    rows = []
    for k in range(6):
        a, b = files[k % 6], files[(k + 2) % 6]
        rows.append({"ranking_id": 100 + k, "caption": captions[k % 3], "jpg_0": (images / a).read_bytes(),
                     "jpg_1": (images / b).read_bytes(), "image_0_uid": a, "image_1_uid": b, "label_0": 1.0})
    table = pa.Table.from_pylist(rows)
    folder = shards(tmp_path, table, [0, 2, 3, 6], name="pickapic")
    # The same pairs as a manifest: each pair a group of its two images.
    manifest = images / "pickapic-manifest.jsonl"
    try:
        with open(manifest, "w") as f:
            for r in rows:
                for side in (0, 1):
                    f.write(json.dumps({"prompt": r["caption"], "image": r[f"image_{side}_uid"],
                                        "group": str(r["ranking_id"]), "id": f"{r['ranking_id']}:{side}"}) + "\n")
        want = run_cli(cli, "score", "--model", model_dir, "--manifest", manifest, "--preset", "pickscore",
                       "--device", "cpu")["rows"]
    finally:
        manifest.unlink()
    ds = ray.data.read_parquet(str(folder))
    got = pray.score(ds, model_dir, preset="pickscore", layout="pickapic", batch_size=2, device="cpu", num_cpus=0.5).take_all()
    assert len(got) == 12
    assert_rows(got, want)
    for pair in range(100, 106):
        p = [r["probability"] for r in got if r["group"] == str(pair)]
        assert abs(sum(p) - 1.0) < 1e-5


def test_rows_without_ids_are_refused(tmp_path):
    table = pajson.read_json(SAMPLE).drop_columns(["id"])
    ds = ray.data.read_parquet(str(shards(tmp_path, table, [0, 10, table.num_rows])))
    with pytest.raises(Exception, match="give every row an `id`"):
        pray.dpo_pairs(ds, num_cpus=0.5).take_all()


def test_pickapic_rows_need_a_pair_name():
    with pytest.raises(prefscope.PrefscopeError, match="null in 1 rows"):
        pray.pickapic_rows(pa.table({"caption": ["a", "b"], "jpg_0": [b"x", b"x"], "jpg_1": [b"y", b"y"],
                                     "ranking_id": [1, None]}))
    with pytest.raises(prefscope.PrefscopeError, match="repeats"):
        pray.pickapic_rows(pa.table({"caption": ["a", "b"], "jpg_0": [b"x", b"x"], "jpg_1": [b"y", b"y"],
                                     "ranking_id": [1, 1]}))
    with pytest.raises(prefscope.PrefscopeError, match="ranking_id"):
        pray.pickapic_rows(pa.table({"caption": ["a"], "jpg_0": [b"x"], "jpg_1": [b"y"]}))
    with pytest.raises(prefscope.PrefscopeError, match="jpg_1"):
        pray.pickapic_rows(pa.table({"caption": ["a"], "jpg_0": [b"x"], "id": [1]}))
