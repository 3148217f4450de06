"""prefscope.trl.ExportCallback on a real (tiny, random) KTOTrainer run on the CPU: the unpaired
export reproduces, through ``prefscope dpo --loss kto``, the evaluation metrics TRL logged at
every evaluation step (per-batch KL, per-batch reward means, the evaluation loss)."""

import copy
import json
import os
import random
import subprocess

import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from prefscope.trl import ExportCallback
from test_trl import COLOURS, SHAPES, model, tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

# What KTOTrainer logs at evaluation that an export can reproduce (its `entropy`, `logits/*`
# and `num_tokens` need the logits).
KTO_KEYS = ["kl", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected", "loss"]


def unpaired(n, seed, labels=None):
    """TRL's unpaired layout: a correct description is desirable, a wrong one undesirable."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        colour, shape = rng.choice(COLOURS), rng.choice(SHAPES)
        good = labels[i] if labels is not None else rng.random() < 0.5
        said = colour if good else rng.choice([c for c in COLOURS if c != colour])
        where = "in the middle" if good else "near the edge"
        rows.append({"id": f"ex-{seed}-{i}", "prompt": f"Describe the {colour} {shape}:",
                     "completion": f" a {said} {shape} {where}", "label": good})
    return rows


# Eval batches of 3, 3 and 2 rows: the last has desirable rows only, so TRL logs no rejected
# reward and no margin for it, and the short batch weighs less in `eval_loss`.
EVAL_LABELS = [True, False, True, False, False, True, True, True]


def train(tmp_path, **config):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    tok = tokenizer()
    policy = model(len(tok))
    reference = None if config.get("precompute_ref_log_probs") else copy.deepcopy(policy)
    args = KTOConfig(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=3,
        max_steps=4,
        eval_strategy="steps",
        eval_steps=2,
        logging_steps=1,
        learning_rate=5e-3,
        beta=0.1,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        seed=0,
        **config,
    )
    trainer = KTOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        processing_class=tok,
        train_dataset=Dataset.from_list(unpaired(16, 0)),
        eval_dataset=Dataset.from_list(unpaired(8, 1, EVAL_LABELS)),
    )
    callback = ExportCallback(str(tmp_path / "export" / "eval-{step}.parquet"), trainer)
    trainer.add_callback(callback)
    trainer.train()
    return trainer, callback


def check_export(trainer, callback, cli):
    evals = [h for h in trainer.state.log_history if "eval_kl" in h]
    assert [h["step"] for h in evals] == [2, 4]
    assert [s for s, _, _ in callback.written] == [2, 4]
    worst = 0.0
    for (step, path, _), logged in zip(callback.written, evals):
        table = pq.read_table(path)
        assert table.num_rows == 8
        assert table.schema.metadata[b"trl.global_step"] == str(step).encode()
        rows = table.to_pylist()
        assert [r["batch"] for r in rows] == [0, 0, 0, 1, 1, 1, 2, 2]
        assert [r["label"] for r in rows] == EVAL_LABELS
        for row in rows:
            for who in ("policy", "reference"):
                tokens = row[f"{who}_token_logps"]
                assert len(tokens) == row["completion_length"] == len(row["completion_tokens"])
                assert abs(sum(tokens) - row[f"{who}_logps"]) < 1e-4
            assert row["kl_policy_logps"] is not None and row["kl_reference_logps"] is not None
        out = subprocess.run([cli, "dpo", "--input", path, "--loss", "kto", "--beta", str(trainer.beta),
                              "--device", "cpu"], check=True, capture_output=True, text=True).stdout
        report = json.loads(out)
        metrics = report["metrics"]
        for key in KTO_KEYS:
            gap = abs(metrics[key] - logged[f"eval_{key}"])
            worst = max(worst, gap)
            assert gap < 1e-4, (step, key, metrics[key], logged[f"eval_{key}"])
        # The aggregation is the point: pooling the rows (one batch) or averaging batch losses
        # unweighted would miss TRL's numbers on this set.
        pooled = [trainer.beta * (r["policy_logps"] - r["reference_logps"]) for r in rows if r["label"]]
        assert abs(sum(pooled) / len(pooled) - logged["eval_rewards/chosen"]) > 1e-4
        losses = [p["loss"] for p in report["pairs"]]
        batch_means = [sum(losses[a:b]) / (b - a) for a, b in ((0, 3), (3, 6), (6, 8))]
        assert abs(sum(batch_means) / 3 - logged["eval_loss"]) > 1e-4
        # One row per example: rewards on the row's side, the margin's sigmoid KTO's P(desirable).
        assert [p["id"] for p in report["pairs"]] == [r["id"] for r in rows]
        for p, r in zip(report["pairs"], rows):
            side, other = ("chosen_reward", "rejected_reward") if r["label"] else ("rejected_reward", "chosen_reward")
            assert p[other] is None
            assert abs(p[side] - trainer.beta * (r["policy_logps"] - r["reference_logps"])) < 1e-9
    print(f"largest gap to KTOTrainer's logged eval metrics: {worst:.2e}")
    # A paired loss on the unpaired file is refused, naming the file.
    path = callback.written[-1][1]
    done = subprocess.run([cli, "dpo", "--input", path, "--loss", "sigmoid", "--device", "cpu"],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert path in done.stderr and "--loss kto" in done.stderr, done.stderr
    # Training moved the policy; the reference stayed.
    first, last = (pq.read_table(p).to_pylist() for _, p, _ in callback.written)
    assert any(a["policy_logps"] != b["policy_logps"] for a, b in zip(first, last))
    assert all(a["reference_logps"] == pytest.approx(b["reference_logps"], abs=1e-5) for a, b in zip(first, last))


def test_kto_export_with_reference_model(tmp_path, cli):
    trainer, callback = train(tmp_path)
    assert trainer.ref_model is not None and trainer.calculate_KL
    check_export(trainer, callback, cli)
    row = pq.read_table(callback.written[-1][1]).to_pylist()[0]
    assert row["id"] == "ex-1-0" and row["prompt"].startswith("Describe the")
    assert row["completion_tokens"][-1] == "<eos>"


def test_kto_export_with_precomputed_reference(tmp_path, cli):
    trainer, callback = train(tmp_path, precompute_ref_log_probs=True)
    assert trainer.ref_model is None
    check_export(trainer, callback, cli)
