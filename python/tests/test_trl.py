"""prefscope.trl.ExportCallback on a real (tiny, random) DPOTrainer run on the CPU: the export
reproduces the evaluation metrics TRL logged, through ``prefscope dpo`` and ``prefscope.dpo``."""

import copy
import json
import math
import os
import subprocess

import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

import prefscope
from prefscope.trl import ExportCallback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

COLOURS = ["red", "green", "blue", "orange", "purple", "yellow"]
SHAPES = ["circle", "square", "triangle", "star"]


def pairs(n, seed):
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        colour, shape = rng.choice(COLOURS), rng.choice(SHAPES)
        wrong = rng.choice([c for c in COLOURS if c != colour])
        rows.append(
            {
                "id": f"pair-{seed}-{i}",
                "prompt": f"Describe the {colour} {shape}:",
                "chosen": f" a {colour} {shape} in the middle",
                "rejected": f" a {wrong} {shape} near the edge",
            }
        )
    return rows


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for r in pairs(64, 0) + pairs(64, 1) for t in r.values() for w in t.replace(":", " :").split()})
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    for w in words + [":"]:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def model(vocab_size, seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=1, eos_token_id=1, pad_token_id=0)
    return GPT2LMHeadModel(config)


def train(tmp_path, **config):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tok = tokenizer()
    policy = model(len(tok))
    # Without a hub, the reference is a copy of the policy (DPOTrainer would load it by name).
    reference = None if config.get("precompute_ref_log_probs") else copy.deepcopy(policy)
    args = DPOConfig(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
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
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        processing_class=tok,
        train_dataset=Dataset.from_list(pairs(16, 0)),
        eval_dataset=Dataset.from_list(pairs(8, 1)),
    )
    callback = ExportCallback(str(tmp_path / "export" / "eval-{step}.parquet"), trainer)
    trainer.add_callback(callback)
    trainer.train()
    return trainer, callback


TRL_KEYS = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"]


def check_export(trainer, callback, cli):
    evals = [h for h in trainer.state.log_history if "eval_rewards/chosen" in h]
    assert [h["step"] for h in evals] == [2, 4]
    assert [s for s, _, _ in callback.written] == [2, 4]
    for (step, path, _), logged in zip(callback.written, evals):
        table = pq.read_table(path)
        assert table.num_rows == 8
        rows = table.to_pylist()
        for row in rows:
            for side in ("chosen", "rejected"):
                for who in ("policy", "reference"):
                    tokens = row[f"{who}_{side}_token_logps"]
                    assert len(tokens) == row[f"{side}_length"] == len(row[f"{side}_tokens"])
                    assert abs(sum(tokens) - row[f"{who}_{side}_logps"]) < 1e-4
        report = prefscope.dpo(path, beta=trainer.beta)
        gaps = {key: abs(report["metrics"][key] - logged[f"eval_{key}"]) for key in TRL_KEYS}
        gaps["loss"] = abs(report["metrics"]["loss"] - logged["eval_loss"])
        print(f"step {step}: largest gap to TRL's logged metrics {max(gaps.values()):.2e} ({max(gaps, key=gaps.get)})")
        for key, gap in gaps.items():
            assert gap < 1e-4, (step, key, gap)
        # The command reads the same file to the same numbers.
        out = subprocess.run([cli, "dpo", "--input", path, "--beta", str(trainer.beta), "--device", "cpu"],
                             check=True, capture_output=True, text=True).stdout
        cli_metrics = json.loads(out)["metrics"]
        for key in TRL_KEYS + ["loss"]:
            assert abs(cli_metrics[key] - report["metrics"][key]) < 1e-12
    # The whole run at once: the folder of evaluations, each step's metrics TRL's logged ones.
    folder = os.path.dirname(callback.written[0][1])
    out = subprocess.run([cli, "dpo", "--input", folder, "--beta", str(trainer.beta), "--device", "cpu"],
                         check=True, capture_output=True, text=True).stdout
    run = json.loads(out)
    assert [s["step"] for s in run["steps"]] == [2, 4]
    for step, logged in zip(run["steps"], evals):
        for key in TRL_KEYS:
            assert abs(step["metrics"][key] - logged[f"eval_{key}"]) < 1e-4, (step["step"], key)
        assert abs(step["metrics"]["loss"] - logged["eval_loss"]) < 1e-4
    assert run["metrics"] == run["steps"][-1]["metrics"]
    assert run["missing"] == []
    assert all(p["steps"] == [2, 4] and len(p["margins"]) == 2 for p in run["pairs"])
    for flip in run["flips"]:
        assert (flip["from"] > 0) != (flip["to"] > 0) and flip["step"] == 4
    # prefscope.dpo on the list of files: the command's run report.
    both = prefscope.dpo([p for _, p, _ in callback.written][::-1], beta=trainer.beta, device="cpu")
    assert both["steps"] == run["steps"] and both["flips"] == run["flips"] and both["missing"] == []
    assert both["pairs"].column("margins").to_pylist() == [p["margins"] for p in run["pairs"]]
    # Training moved the policy away from the reference: the export is not the step-0 model.
    first, last = (pq.read_table(p).to_pylist() for _, p, _ in callback.written)
    assert any(a["policy_chosen_logps"] != b["policy_chosen_logps"] for a, b in zip(first, last))
    assert all(a["reference_chosen_logps"] == pytest.approx(b["reference_chosen_logps"], abs=1e-5) for a, b in zip(first, last))


def test_export_with_reference_model(tmp_path, cli):
    trainer, callback = train(tmp_path)
    assert trainer.ref_model is not None
    check_export(trainer, callback, cli)
    rows = pq.read_table(callback.written[-1][1]).to_pylist()
    assert rows[0]["chosen_tokens"][-1] == "<eos>"
    assert rows[0]["id"] == "pair-1-0" and rows[0]["prompt"].startswith("Describe the")


def test_export_with_precomputed_reference(tmp_path, cli):
    trainer, callback = train(tmp_path, precompute_ref_log_probs=True)
    assert trainer.ref_model is None
    check_export(trainer, callback, cli)


def test_export_with_peft_adapter(tmp_path, cli):
    peft = pytest.importorskip("peft")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    tok = tokenizer()
    args = DPOConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, per_device_eval_batch_size=4,
                     max_steps=4, eval_strategy="steps", eval_steps=2, logging_steps=1, learning_rate=5e-2,
                     beta=0.1, report_to=[], save_strategy="no", use_cpu=True, seed=0)
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], lora_dropout=0.0, task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model(len(tok)), args=args, processing_class=tok, peft_config=lora,
                         train_dataset=Dataset.from_list(pairs(16, 0)), eval_dataset=Dataset.from_list(pairs(8, 1)))
    callback = ExportCallback(str(tmp_path / "export" / "eval-{step}.parquet"), trainer)
    trainer.add_callback(callback)
    trainer.train()
    assert trainer.ref_model is None
    check_export(trainer, callback, cli)


def test_unsupported_setups_fail_when_training_starts(tmp_path):
    with pytest.raises(ValueError, match="ld_alpha"):
        train(tmp_path, ld_alpha=0.5)
