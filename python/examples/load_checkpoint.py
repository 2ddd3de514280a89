"""Loads a trained pyramidion checkpoint's weights into plain tensors, with only torch installed,
and pools a random batch with its first pooling layer.

    PYTHONPATH=python python python/examples/load_checkpoint.py runs/small/latest

(The checkpoint reader needs no pyramidion C++; the pooling at the end does, and is skipped with a
note when the library is not built.)
"""
import sys

import torch

import pyramidion

directory = sys.argv[1] if len(sys.argv) > 1 else "runs/small/latest"
config, weights = pyramidion.load_checkpoint(directory)
total = sum(t.numel() for t in weights.values())
print(f"{directory}: {len(weights)} tensors, {total} numbers; d_model {config['d_model']}, "
      f"pooled_lengths {config.get('pooled_lengths')}")
for name in list(weights)[:3]:
    print(f"  {name}: {tuple(weights[name].shape)} {weights[name].dtype}")

if config.get("pooled_lengths"):
    try:
        pool = pyramidion.TopKPooler(config["d_model"], config["pooled_lengths"][0], base=config["pooler"]["base"],
                                     keep_order=config["pooler"]["keep_order"])
    except ImportError as e:  # the operator's library is not built here
        print(f"(pooling skipped: {e})")
        sys.exit(0)
    pool.load_state_dict(pyramidion.pooler_state_dict(weights, 0))
    x = torch.randn(2, 2 * config["pooled_lengths"][0], config["d_model"])
    out = pool(x)
    print(f"pooling layer 0: {tuple(x.shape)} -> {tuple(out.values.shape)}, kept positions of example 0: "
          f"{out.indices[0, :8].tolist()}...")
