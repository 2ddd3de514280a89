"""A pyramidion checkpoint's weights and configuration in plain PyTorch, without the C++ library.

A checkpoint (or a saved model) is a directory: ``config.json`` (the model's settings, with
``format_version``), ``weights.pt`` (every parameter and buffer by its C++ module path, e.g.
``encoder_poolers.0.scorer.weight``, float32 on the CPU), ``tokenizer.model`` (sentencepiece) and
``checksums.json`` (bytes and a 64-bit hash of every file). ``weights.pt`` is LibTorch's
``torch::pickle_save`` of a dict of name -> tensor, the zip format of ``torch.save``: it loads with
``torch.load(path, weights_only=True)`` once ``torch.jit._pickle.restore_type_tag`` (the typed-dict
tag LibTorch writes) is allowed, which :func:`load_checkpoint` does.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, NamedTuple, Union

import torch
import torch.jit._pickle

SUPPORTED_FORMAT_VERSION = 1


class Checkpoint(NamedTuple):
    config: dict                     # config.json as a dict
    weights: Dict[str, torch.Tensor]  # name -> tensor, the C++ module's parameter and buffer names


def load_weights(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """``weights.pt`` (a file) as a dict of name -> tensor."""
    with torch.serialization.safe_globals([torch.jit._pickle.restore_type_tag]):
        weights = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"{path}: expected a dict of name -> tensor, got {type(weights).__name__}")
    return dict(weights)


def load_checkpoint(directory: Union[str, Path]) -> Checkpoint:
    """The configuration and weights of a checkpoint or model directory.

    Checks that the files exist, that their sizes are those ``checksums.json`` records (a truncated
    copy is refused; the 64-bit hash itself is checked by the C++ loader) and the format version.
    Raises FileNotFoundError or ValueError naming the file.
    """
    d = Path(directory)
    for name in ("config.json", "weights.pt"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d}: no {name} (not a pyramidion checkpoint or model directory)")
    sums = d / "checksums.json"
    if sums.is_file():
        for name, entry in json.loads(sums.read_text()).get("files", {}).items():
            f = d / name
            if f.is_file() and f.stat().st_size != entry.get("bytes"):
                raise ValueError(f"{f}: {f.stat().st_size} bytes, but checksums.json records {entry.get('bytes')} "
                                 f"(a truncated or replaced file)")
    config = json.loads((d / "config.json").read_text())
    version = config.get("format_version")
    if version != SUPPORTED_FORMAT_VERSION:
        raise ValueError(f"{d / 'config.json'}: format_version {version}, this reader knows "
                         f"{SUPPORTED_FORMAT_VERSION}")
    return Checkpoint(config, load_weights(d / "weights.pt"))


def pooler_state_dict(weights: Dict[str, torch.Tensor], layer: int) -> Dict[str, torch.Tensor]:
    """The weights of encoder pooling layer ``layer`` under TopKPooler's names (``scorer.weight``...)."""
    prefix = f"encoder_poolers.{layer}."
    out = {name[len(prefix):]: t for name, t in weights.items() if name.startswith(prefix)}
    if not out:
        have = sorted({n.split(".")[1] for n in weights if n.startswith("encoder_poolers.")})
        raise KeyError(f"no pooling layer {layer} in these weights (pooling layers: {have or 'none'})")
    return out
