"""PyTorch baseline for the tower benchmark (crates/clip/benches/towers.rs): transformers'
CLIPModel with openai/clip-vit-base-patch32's shapes and random weights, eager fp32, on torch's
best device (CUDA when present, else the CPU). Texts are tokenised and padded to the longest,
as the Rust side cuts at the longest pooled position; images are already 224×224 tensors, so
neither side's time includes decoding. Prints one JSON line.

Usage: python clip_torch.py BATCH REPEATS
"""
import json
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import torch
from transformers import CLIPConfig, CLIPModel
from timing import best


def main():
    batch, repeats = int(sys.argv[1]), int(sys.argv[2])
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    config = CLIPConfig(
        text_config=dict(hidden_size=512, intermediate_size=2048, num_attention_heads=8, num_hidden_layers=12,
                         max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu",
                         bos_token_id=0, eos_token_id=2, pad_token_id=1),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                           image_size=224, patch_size=32, hidden_act="quick_gelu"),
        projection_dim=512)
    model = CLIPModel(config).float().eval().to(dev)
    # "a photo of {i} small shapes on a plain background, seen from above": 15 tokens with start/end.
    ids = torch.randint(1, 49000, (batch, 15), device=dev)
    ids[:, 0], ids[:, -1] = 49406, 49407
    pixels = torch.randn(batch, 3, 224, 224, device=dev)
    with torch.inference_mode():
        text_s = best(repeats, lambda: model.get_text_features(input_ids=ids), sync)
        image_s = best(repeats, lambda: model.get_image_features(pixel_values=pixels), sync)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(json.dumps(dict(device=name, text_per_s=batch / text_s, image_per_s=batch / image_s)))


if __name__ == "__main__":
    main()
