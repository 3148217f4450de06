#!/usr/bin/env bash
# Builds a Python virtual environment with the reference implementations that prefscope's
# golden fixtures are generated from: torch (CPU use), transformers, open_clip, trl.
# Usage: tools/reference-venv.sh [VENV_DIR]   (default: .venv-reference, ~4.7 GB, ~2 min)
# PyPI's Linux torch wheel is the CUDA build; it imports on a CPU-only machine as long as the CUDA
# libraries it links directly are present, so those are installed and the rest (triton, toolkit)
# is skipped with --no-deps. Fixture scripts should set HF_HUB_OFFLINE=1: no hub is reachable,
# so models are built from configs with random weights and a fixed seed.
set -euo pipefail
VENV=${1:-.venv-reference}
python3 -m venv "$VENV"
. "$VENV/bin/activate"
pip install -q --upgrade pip
pip install -q --no-deps \
  torch==2.15.0 torchvision==0.29.2 open_clip_torch==3.3.0 timm==1.0.31 trl==1.16.0 accelerate==1.15.0 \
  nvidia-cuda-runtime==13.2.86 nvidia-cublas==13.4.1.3 nvidia-cudnn-cu13==9.26.0.51 nvidia-cufft==12.2.0.57 \
  nvidia-cufile==1.17.1.22 nvidia-cuda-cupti==13.2.86 nvidia-cusparse==12.7.10.12 nvidia-cusparselt-cu13==0.8.1 \
  nvidia-nccl-cu13==2.30.7 nvidia-cuda-nvrtc==13.2.86 nvidia-nvshmem-cu13==3.7.2 nvidia-nvjitlink==13.5.37
pip install -q filelock 'typing-extensions>=4.13.0' 'sympy>=1.13.3' 'networkx>=2.5.1' jinja2 'fsspec>=0.8.5' \
  'setuptools>=77.0.3' transformers==5.24.0 safetensors==0.8.0 numpy pillow regex ftfy tqdm huggingface_hub pyyaml \
  psutil datasets==5.2.0 torchmetrics
python -c "import torch, transformers, open_clip, trl; print('reference venv ready:', 'torch', torch.__version__, 'transformers', transformers.__version__, 'open_clip', open_clip.__version__, 'trl', trl.__version__)"
# Notes for fixture scripts:
# - open_clip ships the CLIP BPE vocabulary: $VENV/lib/python3.11/site-packages/open_clip/bpe_simple_vocab_16e6.txt.gz
#   (first 48,894 merges -> 49,408-entry vocab). A Hugging Face tokenizer.json can be built offline from it
#   by writing vocab.json + merges.txt and calling transformers.CLIPTokenizer.from_pretrained(dir).save_pretrained(out).
# - TRL 1.16 has no standalone dpo_loss; its loss lives in DPOTrainer._compute_loss. Per-pair values need one call per pair.
