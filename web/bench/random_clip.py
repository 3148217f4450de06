"""A CLIP model with random weights in transformers' layout, for `cargo xtask bench-web`'s
ViT-H/14 row (PickScore's and HPS v2's towers on the CPU path): config.json from a
transformers config (tests/fixtures/clip/vit-h-14-config.json), f16 safetensors, the test
fixtures' CLIP tokenizer and CLIP's preprocessor config. prefscope then quantizes it.

    python random_clip.py CONFIG.json TOKENIZER.json OUT_DIR
"""

import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel


def main(config_path: str, tokenizer: str, out: str) -> None:
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    config = CLIPConfig.from_dict(json.loads(Path(config_path).read_text()))
    model = CLIPModel(config).to(torch.float16).eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    shutil.copy(tokenizer, out_dir / "tokenizer.json")
    size = config.vision_config.image_size
    (out_dir / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": {"height": size, "width": size}, "do_center_crop": True, "do_normalize": True,
        "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "resample": 3,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "size": {"shortest_edge": size},
    }, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4])
