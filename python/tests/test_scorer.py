"""prefscope.Scorer against `prefscope embed` and `prefscope score` on the fixture model."""

import io

import numpy as np
import pyarrow as pa
import pytest

import prefscope
from conftest import FIXTURE, ROOT, run_cli

IMAGES = ["square24.png", "wide.png", "rotated.jpg", "tall_rgba.png", "grey.png"]
TEXTS = ["a large red circle in the center", "a small blue square on the left", "x " * 120]
MANIFEST = ROOT / "web" / "tests" / "manifest.csv"


@pytest.fixture(scope="module")
def scorer(model_dir):
    return prefscope.Scorer(model_dir, device="cpu", batch=2)


def image_path(name):
    return FIXTURE / "clip" / "images" / name


def test_embeddings_equal_the_command(cli, model_dir, scorer, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    want = run_cli(cli, "embed", "--model", model_dir, "--texts", texts, "--images",
                   *[image_path(f) for f in IMAGES], "--device", "cpu", "--batch", "2")["rows"]
    t = scorer.embed_texts(TEXTS)
    i = scorer.embed_images([image_path(f) for f in IMAGES])
    assert t.dtype == np.float32 and t.shape == (3, scorer.dim) and i.shape == (5, scorer.dim)
    for got, row in zip([*t, *i], want):
        np.testing.assert_allclose(got, row["embedding"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    # The same pixels as bytes, as PIL images, and as (width, height, RGBA).
    data = [image_path(f).read_bytes() for f in IMAGES]
    np.testing.assert_allclose(scorer.embed_images(data), i, atol=1e-6)
    PIL = pytest.importorskip("PIL.Image")
    from PIL import ImageOps

    # A PIL image is taken as its pixels, as transformers' processors take it: the EXIF
    # orientation a file carries (rotated.jpg) is applied by the caller, as the files' decoder does.
    pil = [ImageOps.exif_transpose(PIL.open(io.BytesIO(b))) for b in data]
    from_pil = scorer.embed_images(pil)
    png = [k for k, f in enumerate(IMAGES) if f.endswith(".png")]
    np.testing.assert_allclose(from_pil[png], i[png], atol=1e-6)
    # JPEG: Pillow's libjpeg and the image crate's decoder round the IDCT differently.
    np.testing.assert_allclose(from_pil, i, atol=2e-3)
    assert scorer.device == "cpu (f32)" and scorer.dtype == "f32"


def test_dtypes_as_the_command_names_them(cli, model_dir, scorer, tmp_path):
    f32 = scorer.embed_texts(TEXTS)
    for dtype, floor in (("q8", 0.999), ("fp16", 0.9999), ("f16", 0.9999)):
        other = prefscope.Scorer(model_dir, device="cpu", dtype=dtype)
        name = "f16" if dtype == "fp16" else dtype
        assert other.dtype == name and other.device == f"cpu ({name})"
        cos = (other.embed_texts(TEXTS) * f32).sum(axis=1)
        assert cos.min() >= floor, (dtype, cos)
    # A model directory written by `prefscope quantize` runs in its stored dtype.
    out = tmp_path / "q8"
    run_cli(cli, "quantize", "--model", model_dir, "--dtype", "q8", "--out", out)
    stored = prefscope.Scorer(out, device="cpu")
    assert stored.dtype == "q8"
    np.testing.assert_allclose(stored.embed_texts(TEXTS), prefscope.Scorer(model_dir, device="cpu", dtype="q8").embed_texts(TEXTS), atol=1e-6)
    # The former keyword, and a bad name.
    assert prefscope.Scorer(model_dir, device="cpu", precision="q8").dtype == "q8"
    with pytest.raises(prefscope.PrefscopeError, match="unknown dtype `int4`"):
        prefscope.Scorer(model_dir, device="cpu", dtype="int4")
    with pytest.raises(ValueError, match="disagree"):
        prefscope.Scorer(model_dir, device="cpu", dtype="f16", precision="q8")


def assert_rows(got, want):
    rows = got.to_pylist()
    assert [r["id"] for r in rows] == [w["id"] for w in want]
    for g, w in zip(rows, want):
        for k in ("group", "prompt", "image", "rank"):
            assert g[k] == w[k], k
        for k in ("score", "relevant", "irrelevant", "reweighted", "probability"):
            assert abs(g[k] - w[k]) <= 1e-5 * max(1.0, abs(w[k])), (g["id"], k, g[k], w[k])


def test_score_equals_the_command(cli, model_dir, scorer):
    want = run_cli(cli, "score", "--model", model_dir, "--manifest", MANIFEST, "--preset", "pickscore",
                   "--reweight", "0.3", "--device", "cpu")["rows"]
    got = scorer.score(MANIFEST, preset="pickscore", reweight=0.3)
    assert isinstance(got, pa.Table)
    assert got.column_names == ["id", "group", "prompt", "image", "score", "relevant", "irrelevant",
                                "reweighted", "probability", "rank"]
    assert_rows(got, want)


def test_score_tables_with_paths_and_bytes(cli, model_dir, scorer):
    import pyarrow.csv as pacsv

    want = run_cli(cli, "score", "--model", model_dir, "--manifest", MANIFEST, "--preset", "clip",
                   "--device", "cpu")["rows"]
    table = pacsv.read_csv(MANIFEST)
    got = scorer.score(table, root=MANIFEST.parent)
    assert_rows(got, want)
    # Images as bytes in the table (Pick-a-Pic's way), named by `image_name`.
    data = [(MANIFEST.parent / p).read_bytes() for p in table.column("image").to_pylist()]
    with_bytes = table.drop_columns(["image"]).append_column("image", pa.array(data, pa.binary()))
    with_bytes = with_bytes.append_column("image_name", table.column("image"))
    assert_rows(scorer.score(with_bytes), want)
    # Hugging Face datasets' Image feature: a struct of bytes and path.
    struct = pa.StructArray.from_arrays([pa.array(data, pa.binary()), pa.array([None] * len(data), pa.string())],
                                        ["bytes", "path"])
    hf = table.drop_columns(["image"]).append_column("image", struct).append_column("image_name", table.column("image"))
    assert_rows(scorer.score(hf), want)


def test_bad_input_is_located(model_dir, scorer, tmp_path):
    table = pa.table({"prompt": ["a red circle", None], "image": [str(image_path("grey.png"))] * 2})
    with pytest.raises(prefscope.PrefscopeError, match=r"^table: row 2, column `prompt`: value is missing"):
        scorer.score(table)
    with pytest.raises(prefscope.PrefscopeError, match=r"^table, column `image`: required column is missing"):
        scorer.score(pa.table({"prompt": ["a"]}))
    with pytest.raises(prefscope.PrefscopeError, match=r"^table: row 1, column `image`: .*type Int64, where paths"):
        scorer.score(pa.table({"prompt": ["a"], "image": [3]}))
    broken = pa.table({"prompt": ["a"], "image": pa.array([b"not an image"], pa.binary())})
    with pytest.raises(prefscope.PrefscopeError, match=r"row 1"):
        scorer.score(broken)
    with pytest.raises(prefscope.PrefscopeError, match=r"missing.png"):
        scorer.embed_images([tmp_path / "missing.png"])
    with pytest.raises(prefscope.PrefscopeError, match="image 2: expected a path"):
        scorer.embed_images([image_path("grey.png"), 3.5])
    with pytest.raises(prefscope.PrefscopeError, match="unknown"):
        scorer.score(MANIFEST, preset="nope")
    with pytest.raises(prefscope.PrefscopeError, match="reweight must be a finite number"):
        scorer.score(MANIFEST, reweight=float("nan"))
    with pytest.raises(prefscope.PrefscopeError, match="tokenizer.json"):
        prefscope.Scorer(FIXTURE / "clip" / "hf-quickgelu-f32", device="cpu")
    with pytest.raises(prefscope.PrefscopeError, match="batch must be"):
        prefscope.Scorer(model_dir, device="cpu", batch=0)
    with pytest.raises(prefscope.PrefscopeError, match="batch must be"):
        prefscope.Scorer(model_dir, device="cpu", batch=2**62)
    # Optional columns of nulls only (Arrow's Null type) are absent values: groups by prompt.
    nulls = pa.table({"prompt": ["a red circle"], "image": [str(image_path("grey.png"))], "group": pa.nulls(1),
                      "id": pa.nulls(1)})
    row = scorer.score(nulls).to_pylist()[0]
    assert row["group"] == "a red circle" and row["id"] == "1"
    small = prefscope.Scorer(model_dir, device="cpu", max_image_pixels=100)
    with pytest.raises(prefscope.PrefscopeError, match="limit of 100 pixels.*max_image_pixels in Python"):
        small.embed_images([image_path("wide.png")])
    with pytest.raises(prefscope.PrefscopeError, match="limit of 100 pixels.*max_image_pixels in Python"):
        small.embed_images([(64, 64, bytes(64 * 64 * 4))])
    with pytest.raises(prefscope.PrefscopeError, match="image 1"):
        scorer.embed_images([(4, 4, b"short")])


def test_the_gpu_path_agrees_with_the_cpu(model_dir, scorer):
    """On whatever adapter wgpu finds (Mesa's lavapipe in CI): the towers and the DPO report."""
    try:
        gpu = prefscope.Scorer(model_dir, device="gpu", batch=2)
    except prefscope.PrefscopeError as e:
        pytest.skip(f"no GPU adapter: {e}")
    assert gpu.device.startswith("gpu: ")
    np.testing.assert_allclose(gpu.embed_texts(TEXTS), scorer.embed_texts(TEXTS), atol=1e-5)
    images = [image_path(f) for f in IMAGES]
    np.testing.assert_allclose(gpu.embed_images(images), scorer.embed_images(images), atol=1e-5)
    cpu_rows = scorer.score(MANIFEST, preset="pickscore").to_pylist()
    gpu_rows = gpu.score(MANIFEST, preset="pickscore").to_pylist()
    for c, g in zip(cpu_rows, gpu_rows):
        assert c["id"] == g["id"] and abs(c["score"] - g["score"]) <= 1e-4 * max(1.0, abs(c["score"]))
    sample = FIXTURE / "dpo_sample.jsonl"
    on_cpu = prefscope.dpo(sample, device="cpu")["metrics"]
    on_gpu = prefscope.dpo(sample, device="gpu")["metrics"]
    for k, v in on_cpu.items():
        assert abs(on_gpu[k] - v) <= 1e-5 * max(1.0, abs(v)), k
