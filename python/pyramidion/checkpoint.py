"""A pyramidion checkpoint's weights and configuration in plain PyTorch, without the C++ library.

A checkpoint (or a saved model) is a directory: ``config.json`` (the model's settings, with
``format_version``), ``weights.pt`` (every parameter and buffer by its C++ module path, e.g.
``encoder_poolers.0.scorer.weight``, float32 on the CPU), ``tokenizer.model`` (sentencepiece) and
``checksums.json`` (bytes and a 64-bit hash of every file). ``weights.pt`` is LibTorch's
``torch::pickle_save`` of a dict of name -> tensor, the zip format of ``torch.save``: it loads with
``torch.load(path, weights_only=True)`` once ``torch.jit._pickle.restore_type_tag`` (the typed-dict
tag LibTorch writes) is allowed, which :func:`load_checkpoint` does. ``weights_only`` is what makes a
hostile ``weights.pt`` safe to open: a pickle that would call anything but the tensor rebuilders is
refused before it runs.

Errors: a missing directory or file raises FileNotFoundError; anything else that cannot be read (an
unreadable, cut-short or garbled file, JSON of the wrong shape, a format newer than this version
reads) raises ValueError. Both name the file and the reason, and chain the original exception.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, NamedTuple, Union

import torch
import torch.jit._pickle

SUPPORTED_FORMAT_VERSION = 1    # config.json's "format_version" (ModelConfig::kFormatVersion)
SUPPORTED_CHECKSUMS_FORMAT = 1  # checksums.json's "format" (kFormat in src/util/directory_checksums.cpp)


class Checkpoint(NamedTuple):
    config: dict                     # config.json as a dict
    weights: Dict[str, torch.Tensor]  # name -> tensor, the C++ module's parameter and buffer names


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# The config.json fields Python code reads (the example, TopKPooler's arguments): checked when present,
# as (test, what it must be). The C++ loader checks every field.
_CONFIG_FIELDS: Dict[str, tuple] = {
    "d_model": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "pooled_lengths": (lambda v: isinstance(v, list) and all(_is_int(x) and x >= 0 for x in v),
                       "a list of integers >= 0 (0: no pooling after that layer)"),
    "pooler": (lambda v: isinstance(v, dict), "an object"),
}
_POOLER_FIELDS: Dict[str, tuple] = {
    "base": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "keep_order": (lambda v: isinstance(v, bool), "true or false"),
}


def _show(value) -> str:
    """A JSON value for a message, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _torch_reason(e: BaseException) -> str:
    """The reason in one of torch.load's errors, without its advice to retry with weights_only=False (for
    a file refused here that advice would run whatever the pickle holds) or its boilerplate."""
    text = str(e).strip()
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    core = [p for p in paragraphs
            if not p.startswith(("Weights only load failed", "Check the documentation", "Please file an issue"))]
    reason = " ".join(core) if core else text
    if len(reason) > 200 and ". " in reason:  # miniz: "failed finding central directory. This is an internal..."
        reason = reason.split(". ")[0]
    reason = reason.rstrip(".")
    return f"{type(e).__name__}: {reason}" if reason else type(e).__name__


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from e


def _read_json_object(path: Path) -> dict:
    """The JSON object in ``path``; ValueError naming the file when it is not one."""
    data = _read_bytes(path)
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); restore it from a good copy") from e
    except json.JSONDecodeError as e:
        what = "empty" if not data.strip() else f"not JSON ({e.msg} at line {e.lineno} column {e.colno})"
        raise ValueError(f"{path}: {what}; restore it from a good copy") from e
    except RecursionError as e:  # "[[[[..." nested deeper than Python's parser goes
        raise ValueError(f"{path}: not JSON that can be read (nested too deeply)") from e
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _check_fields(path: Path, where: str, obj: dict, fields: Dict[str, tuple]) -> None:
    for name, (ok, what) in fields.items():
        if name in obj and not ok(obj[name]):
            raise ValueError(f"{path}: {where}{name} is {_show(obj[name])}, expected {what}")


def _require_file(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (not a pyramidion checkpoint or model directory)")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")


def load_weights(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """``weights.pt`` (a file) as a dict of name -> tensor.

    Raises FileNotFoundError if it does not exist, ValueError naming it if it is not a weights file (empty,
    cut short, garbled, or a pickle of anything but a dict of name -> tensor: weights_only refuses it before
    any of it runs)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes); restore it from a good copy")
    try:
        with torch.serialization.safe_globals([torch.jit._pickle.restore_type_tag]):
            weights = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # what torch.load raises on bad bytes varies: EOFError, RuntimeError, UnpicklingError...
        raise ValueError(f"{path}: not a weights file (a dict of name -> tensor): {_torch_reason(e)}; restore it "
                         f"from a good copy") from e
    if not isinstance(weights, dict):
        raise ValueError(f"{path}: expected a dict of name -> tensor, got {type(weights).__name__}")
    for name, value in weights.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: expected a dict of name -> tensor, but entry {name!r} is a "
                             f"{type(name).__name__} -> {type(value).__name__}")
    return dict(weights)


def _check_sizes(d: Path) -> None:
    """Refuses files whose sizes differ from those checksums.json records, and a checksums.json that is
    damaged or newer than this version reads. The 64-bit hashes are checked by the C++ loader."""
    sums = d / "checksums.json"
    if not sums.exists():
        return
    _require_file(sums)
    root = _read_json_object(sums)
    if "format" not in root:
        raise ValueError(f"{sums}: no \"format\" (damaged); restore the directory from a good copy, or delete "
                         f"{sums.name} to load it unchecked")
    fmt = root["format"]
    if not _is_int(fmt) or fmt < 1:
        raise ValueError(f"{sums}: format {_show(fmt)} is not a format version (damaged); restore the "
                         f"directory from a good copy, or delete {sums.name} to load it unchecked")
    if fmt > SUPPORTED_CHECKSUMS_FORMAT:
        raise ValueError(f"{sums}: format {fmt} is newer than this version reads (<= {SUPPORTED_CHECKSUMS_FORMAT}); "
                         f"upgrade pyramidion")
    files = root.get("files")
    if not isinstance(files, dict):
        raise ValueError(f"{sums}: \"files\" is {_show(files)}, expected an object of file name -> "
                         f"{{\"bytes\", \"checksum\"}} (damaged); restore the directory from a good copy")
    for name, entry in files.items():
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"{sums}: {_show(name)} is not a file name in the directory (damaged)")
        if not (isinstance(entry, dict) and _is_int(entry.get("bytes")) and entry["bytes"] >= 0
                and isinstance(entry.get("checksum"), str)):
            raise ValueError(f"{sums}: the entry of {name} is {_show(entry)}, expected "
                             f"{{\"bytes\": <count>, \"checksum\": \"<hex>\"}} (damaged); restore the directory "
                             f"from a good copy")
        f = d / name
        if f.is_file() and f.stat().st_size != entry["bytes"]:
            raise ValueError(f"{f}: {f.stat().st_size} bytes, but checksums.json records {entry['bytes']} "
                             f"(a truncated or replaced file)")


def _read_config(path: Path) -> dict:
    config = _read_json_object(path)
    if "format_version" not in config:
        raise ValueError(f"{path}: no format_version (not a pyramidion config.json)")
    version = config["format_version"]
    if not _is_int(version) or version < 1:
        raise ValueError(f"{path}: format_version {_show(version)} must be an integer >= 1")
    if version > SUPPORTED_FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version} is newer than this version reads "
                         f"(<= {SUPPORTED_FORMAT_VERSION}); upgrade pyramidion")
    _check_fields(path, "", config, _CONFIG_FIELDS)
    if "pooler" in config:
        _check_fields(path, "pooler.", config["pooler"], _POOLER_FIELDS)
    return config


def load_checkpoint(directory: Union[str, Path]) -> Checkpoint:
    """The configuration and weights of a checkpoint or model directory.

    Checks that the files exist, that their sizes are those ``checksums.json`` records (a truncated
    copy is refused; the 64-bit hash itself is checked by the C++ loader), the format versions of
    ``config.json`` and ``checksums.json``, and the types of the config fields Python reads.
    Raises FileNotFoundError (a missing directory or file) or ValueError (anything else that cannot be
    read), naming the file and the reason.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: {'not a directory' if d.exists() else 'no such directory'} "
                                f"(not a pyramidion checkpoint or model directory)")
    for name in ("config.json", "weights.pt"):
        _require_file(d / name)
    _check_sizes(d)
    config = _read_config(d / "config.json")
    return Checkpoint(config, load_weights(d / "weights.pt"))


def pooler_state_dict(weights: Dict[str, torch.Tensor], layer: int) -> Dict[str, torch.Tensor]:
    """The weights of encoder pooling layer ``layer`` under TopKPooler's names (``scorer.weight``...)."""
    prefix = f"encoder_poolers.{layer}."
    out = {name[len(prefix):]: t for name, t in weights.items() if name.startswith(prefix)}
    if not out:
        have = sorted({n.split(".")[1] for n in weights if n.startswith("encoder_poolers.")})
        raise KeyError(f"no pooling layer {layer} in these weights (pooling layers: {have or 'none'})")
    return out
