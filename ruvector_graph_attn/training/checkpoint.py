"""Safe checkpoints: architecture config (pydantic JSON) + weights (.npz, no pickle) + manifest.

A checkpoint is one file, a ZIP archive (stored, not compressed) with three members:

- ``manifest.json``: format name, format version, library version, and the sha256 and size
  of the two other members;
- ``config.json``: the model's architecture as a :class:`LayerSpec` tree (layer type and
  constructor arguments, nested for containers and for layers that take modules, such as
  ``GINConv(nn)``), plus the parameter dtype and free-form metadata;
- ``arrays.npz``: the ``state_dict`` (torch / PyG names), read with ``allow_pickle=False``.

The file is written to a temporary file in the target folder, flushed, fsynced and moved
into place with ``os.replace``, so a crash never leaves a half-written checkpoint under
the target name. Loading verifies everything before building anything: a truncated or
tampered file raises :class:`CorruptFileError`, an unknown format version
:class:`FormatVersionError`, weights that do not fit the architecture (or a given model)
:class:`StateDictError`.

Layers describe their constructor arguments through a small registry
(:func:`register_layer`); a layer class may instead define ``get_config() -> dict``. At
save time the config is rebuilt into a fresh model and its parameter names and shapes are
compared with the model's, so a config that would not restore the model is refused then,
not discovered at load time.
"""
from __future__ import annotations

import importlib
import inspect
import io
import json
import math
import os
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np
from pydantic import Field, ValidationError

from ..config import RgaConfig
from ..errors import (
    ConfigError, CorruptFileError, FormatVersionError, InputTooLargeError, InvalidInputError, RgaError,
    StateDictError, StorageError,
)
from ..fileio import check_path, read_npy_checked, sha256_bytes as _sha256, write_atomic as _write_atomic
from ..nn.module import Module, Parameter

__all__ = [
    "save_checkpoint", "load_checkpoint", "read_checkpoint_config", "get_config", "build_from_config",
    "register_layer", "LayerSpec", "CheckpointConfig", "CheckpointManifest",
    "export_pyg_state_dict", "import_pyg_state_dict", "FORMAT_NAME", "FORMAT_VERSION",
]

FORMAT_NAME = "ruvector-graph-attn/checkpoint"
FORMAT_VERSION = 1
_MEMBERS = ("manifest.json", "config.json", "arrays.npz")
#: refuse archives whose members claim more than this (protects against zip bombs)
MAX_MEMBER_BYTES = 8 * 1024 ** 3
#: manifest.json and config.json are small; anything larger is not ours
MAX_JSON_BYTES = 16 * 1024 ** 2
#: a config may describe at most this many parameters more than ``arrays.npz`` holds
#: (plus this factor), so a crafted config cannot make the loader allocate terabytes
PARAM_SLACK = 1 << 20


class LayerSpec(RgaConfig):
    """One layer: registered type name, JSON constructor arguments and module arguments/children."""

    type: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    modules: dict[str, "LayerSpec"] = Field(default_factory=dict)


LayerSpec.model_rebuild()


class CheckpointConfig(RgaConfig):
    model: LayerSpec
    dtype: str = "float32"
    metadata: dict[str, Any] = Field(default_factory=dict)


class _FileEntry(RgaConfig):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class CheckpointManifest(RgaConfig):
    format: str
    format_version: int
    library_version: str
    files: dict[str, _FileEntry]
    num_arrays: int = Field(ge=0)


# -- the layer registry ------------------------------------------------------------------
@dataclass
class _Entry:
    load: Callable[[], type]
    args: Optional[Callable[[Any], dict[str, Any]]]  # JSON args and module-valued args
    container: bool = False  # children are the constructor's modules (Sequential-like)


_REGISTRY: dict[str, _Entry] = {}


def register_layer(name: str, cls: type | Callable[[], type],
                   get_args: Optional[Callable[[Any], dict[str, Any]]] = None, container: bool = False) -> None:
    """Teach checkpoints to rebuild a layer type.

    ``get_args(layer)`` returns the constructor keyword arguments (JSON values, or Modules
    for module-valued arguments such as GIN's ``nn``). Without it, the constructor's
    signature is read and each argument taken from the attribute of the same name.
    ``container=True`` marks Sequential-like classes rebuilt from their ordered children.
    """
    loader = cls if not isinstance(cls, type) else (lambda c=cls: c)
    _REGISTRY[name] = _Entry(loader, get_args, container)


def _lazy(module: str, attr: str) -> Callable[[], type]:
    return lambda: getattr(importlib.import_module(f"ruvector_graph_attn.{module}"), attr)


def _bias(m: Any, attr: str = "bias") -> bool:
    return getattr(m, attr, None) is not None


def _sage_args(m: Any) -> dict[str, Any]:
    return dict(in_channels=m.in_channels, out_channels=m.out_channels, aggr=m.aggr, normalize=m.normalize,
                root_weight=m.root_weight, project=m.project, bias=m.lin_l.bias is not None)


def _gin_args(m: Any) -> dict[str, Any]:
    out = dict(nn=m.nn, eps=float(m.initial_eps), train_eps=bool(m.train_eps))
    if type(m).__name__ == "GINEConv":
        out["edge_dim"] = m.edge_dim
    return out


register_layer("Linear", _lazy("nn.layers", "Linear"),
               lambda m: dict(in_features=m.in_features, out_features=m.out_features, bias=_bias(m)))
register_layer("Sequential", _lazy("nn.layers", "Sequential"), container=True)
register_layer("ReLU", _lazy("nn.layers", "ReLU"), lambda m: {})
register_layer("Tanh", _lazy("nn.layers", "Tanh"), lambda m: {})
register_layer("Identity", _lazy("nn.layers", "Identity"), lambda m: {})
register_layer("LeakyReLU", _lazy("nn.layers", "LeakyReLU"), lambda m: dict(negative_slope=float(m.negative_slope)))
register_layer("ELU", _lazy("nn.layers", "ELU"), lambda m: dict(alpha=float(m.alpha)))
register_layer("Dropout", _lazy("nn.layers", "Dropout"), lambda m: dict(p=float(m.p)))
register_layer("LayerNorm", _lazy("nn.layers", "LayerNorm"),
               lambda m: dict(normalized_shape=list(m.normalized_shape), eps=float(m.eps),
                              elementwise_affine=bool(m.elementwise_affine)))
register_layer("GraphSequential", _lazy("graph.sequential", "GraphSequential"), container=True)
register_layer("SAGEConv", _lazy("graph.sage", "SAGEConv"), _sage_args)
register_layer("GINConv", _lazy("graph.gin", "GINConv"), _gin_args)
register_layer("DirGNNConv", _lazy("graph.dirgnn", "DirGNNConv"),
               lambda m: dict(conv=m.wrapped_template(), alpha=float(m.alpha), root_weight=bool(m.root_weight)))
register_layer("GINEConv", _lazy("graph.gin", "GINEConv"), _gin_args)
# read from the constructor signature (attributes of the same names), verified at save time
register_layer("GATConv", _lazy("graph.gat", "GATConv"))
register_layer("GATv2Conv", _lazy("graph.gat", "GATv2Conv"))
register_layer("MultiHeadAttention", _lazy("attention.multihead", "MultiHeadAttention"),
               lambda m: dict(embed_dim=m.embed_dim, num_heads=m.num_heads, dropout=float(m.dropout),
                              bias=m.in_proj_bias is not None, kdim=m.kdim, vdim=m.vdim,
                              batch_first=m.batch_first, max_keys=m.max_keys))
register_layer("ScaledDotProductAttention", _lazy("attention.standard", "ScaledDotProductAttention"))

_SKIP_ARGS = {"self", "rng", "dtype", "seed"}


def _is_json_value(v: Any) -> bool:
    if v is None or isinstance(v, (bool, str)):
        return True
    if isinstance(v, (int, np.integer)):
        return True
    if isinstance(v, (float, np.floating)):
        return math.isfinite(float(v))
    if isinstance(v, (list, tuple)):
        return all(_is_json_value(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json_value(x) for k, x in v.items())
    return False


def _to_json(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, tuple):
        return [_to_json(x) for x in v]
    if isinstance(v, list):
        return [_to_json(x) for x in v]
    if isinstance(v, dict):
        return {k: _to_json(x) for k, x in v.items()}
    return v


def _signature_args(m: Any) -> dict[str, Any]:
    """Constructor arguments read back from same-named attributes (``bias`` -> presence)."""
    sig = inspect.signature(type(m).__init__)
    out: dict[str, Any] = {}
    for name, par in sig.parameters.items():
        if name in _SKIP_ARGS or par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD):
            continue
        if name in ("bias", "add_bias_kv") and isinstance(par.default, bool):
            val = getattr(m, name, None)
            out[name] = val if isinstance(val, bool) else val is not None
            continue
        if not hasattr(m, name):
            if par.default is inspect.Parameter.empty:
                raise ConfigError(f"cannot read constructor argument {name!r} of {type(m).__name__} "
                                  "(no attribute of that name); register it with register_layer(get_args=...)")
            continue
        val = getattr(m, name)
        if isinstance(val, Parameter):
            raise ConfigError(f"{type(m).__name__}.{name} is a Parameter, not a constructor argument; "
                              "register the layer with register_layer(get_args=...)")
        out[name] = val
    return out


def _type_name(m: Module) -> str:
    name = type(m).__name__
    entry = _REGISTRY.get(name)
    if entry is not None:
        try:
            if entry.load() is type(m):
                return name
        except (ImportError, AttributeError):
            pass
    if hasattr(m, "get_config") and type(m).__module__.startswith("ruvector_graph_attn."):
        return f"{type(m).__module__}:{type(m).__qualname__}"
    raise ConfigError(
        f"{name} cannot be saved in a checkpoint: it is not registered "
        "(use ruvector_graph_attn.training.checkpoint.register_layer) and has no get_config()")


def get_config(model: Module) -> LayerSpec:
    """The :class:`LayerSpec` tree that rebuilds ``model``'s architecture."""
    if not isinstance(model, Module):
        raise InvalidInputError(f"expected a Module, got {type(model).__name__}")
    tname = _type_name(model)
    entry = _REGISTRY.get(tname)
    if entry is not None and entry.container:
        return LayerSpec(type=tname, modules={k: get_config(v) for k, v in model._modules.items()})
    if hasattr(model, "get_config"):
        raw = dict(model.get_config())
    elif entry is not None and entry.args is not None:
        raw = entry.args(model)
    else:
        raw = _signature_args(model)
    args: dict[str, Any] = {}
    mods: dict[str, LayerSpec] = {}
    for k, v in raw.items():
        if isinstance(v, Module):
            mods[k] = get_config(v)
        elif _is_json_value(v):
            args[k] = _to_json(v)
        else:
            raise ConfigError(f"constructor argument {k!r} of {type(model).__name__} is not JSON-serialisable "
                              f"({type(v).__name__})")
    return LayerSpec(type=tname, args=args, modules=mods)


def _resolve(tname: str) -> tuple[type, Optional[_Entry]]:
    entry = _REGISTRY.get(tname)
    if entry is not None:
        return entry.load(), entry
    if ":" in tname:
        mod, _, qual = tname.partition(":")
        if not mod.startswith("ruvector_graph_attn.") or not qual.isidentifier():
            raise ConfigError(f"refusing to import layer type {tname!r} from outside ruvector_graph_attn")
        try:
            cls = getattr(importlib.import_module(mod), qual)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"unknown layer type {tname!r}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise ConfigError(f"{tname!r} is not a Module class")
        return cls, None
    raise ConfigError(f"unknown layer type {tname!r}; known: {sorted(_REGISTRY)}")


def build_from_config(spec: LayerSpec | Mapping[str, Any]) -> Module:
    """Construct a freshly initialised model from a :class:`LayerSpec` (or its dict form)."""
    if not isinstance(spec, LayerSpec):
        try:
            spec = LayerSpec.model_validate(spec)
        except ValidationError as exc:
            raise ConfigError(f"invalid layer spec: {exc}") from exc
    cls, entry = _resolve(spec.type)
    if entry is not None and entry.container:
        return cls(OrderedDict((k, build_from_config(v)) for k, v in spec.modules.items()))
    kwargs = dict(spec.args)
    for k, v in spec.modules.items():
        kwargs[k] = build_from_config(v)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"cannot construct {spec.type} from {sorted(kwargs)}: {exc}") from exc


# -- saving ------------------------------------------------------------------------------
def _model_dtype(model: Module) -> str:
    for p in model.parameters():
        return str(p.data.dtype)
    return "float32"


def _signature_of(sd: Mapping[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def save_checkpoint(model: Module, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> str:
    """Write ``model`` (architecture + weights) to ``path`` atomically; returns the path."""
    from .. import __version__

    path = check_path(path, "checkpoint path")
    spec = get_config(model)
    sd = model.state_dict()
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a mapping (str keys, JSON values), got {type(metadata).__name__}")
    meta = dict(metadata or {})
    if not _is_json_value(meta):
        raise InvalidInputError("metadata must be JSON-serialisable (str keys; numbers, strings, lists, dicts)")
    # the config must rebuild this very architecture
    try:
        fresh = build_from_config(spec)
    except ConfigError:
        raise
    except Exception as exc:  # a constructor refusing the read-back arguments
        raise ConfigError(f"the configuration read from {type(model).__name__} does not rebuild it: {exc}") from exc
    if _signature_of(fresh.state_dict()) != _signature_of(sd):
        raise ConfigError(
            f"the configuration read from {type(model).__name__} rebuilds a model with different parameters "
            f"({sorted(_signature_of(fresh.state_dict()).items())} vs {sorted(_signature_of(sd).items())}); "
            "register the layer with get_args")
    for k, v in sd.items():
        if v.dtype.kind not in "fiub":
            raise InvalidInputError(f"state_dict entry {k!r} has non-numeric dtype {v.dtype}")
    cfg = CheckpointConfig(model=spec, dtype=_model_dtype(model), metadata=_to_json(meta))
    config_bytes = cfg.model_dump_json(indent=1).encode("utf-8")
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in sd.items()})
    arrays_bytes = buf.getvalue()
    manifest = CheckpointManifest(
        format=FORMAT_NAME, format_version=FORMAT_VERSION, library_version=__version__,
        files={"config.json": _FileEntry(sha256=_sha256(config_bytes), size=len(config_bytes)),
               "arrays.npz": _FileEntry(sha256=_sha256(arrays_bytes), size=len(arrays_bytes))},
        num_arrays=len(sd))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("manifest.json", manifest.model_dump_json(indent=1))
        zf.writestr("config.json", config_bytes)
        zf.writestr("arrays.npz", arrays_bytes)
    _write_atomic(path, out.getvalue())
    return path


# -- loading -----------------------------------------------------------------------------
def _read_verified(path: str) -> tuple[CheckpointConfig, dict[str, np.ndarray]]:
    if not os.path.isfile(path):
        if os.path.isdir(path):
            raise InvalidInputError(f"{path!r} is a directory, not a checkpoint file")
        raise InvalidInputError(f"no checkpoint file at {path!r}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise StorageError(f"cannot read checkpoint {path!r}: {exc.strerror or exc}") from exc
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise CorruptFileError(f"{path!r} is not a ruvector-graph-attn checkpoint (truncated or not a ZIP): {exc}") from exc
    with zf:
        names = set(zf.namelist())
        if "manifest.json" not in names:
            raise CorruptFileError(f"{path!r} has no manifest.json; not a checkpoint or damaged")
        for info in zf.infolist():
            # the library writes stored (uncompressed) members: a member can then never be
            # larger than the file, so no compressed "bomb" is ever inflated
            if info.compress_type != zipfile.ZIP_STORED:
                raise CorruptFileError(f"{path!r}: member {info.filename} is compressed; checkpoints store members")
            if info.file_size > min(MAX_MEMBER_BYTES, len(raw)):
                raise CorruptFileError(f"{path!r}: member {info.filename} claims {info.file_size} bytes")
        if zf.getinfo("manifest.json").file_size > MAX_JSON_BYTES:
            raise CorruptFileError(f"{path!r}: manifest.json is too large to be a checkpoint manifest")
        try:
            mdata = json.loads(zf.read("manifest.json").decode("utf-8"))
        except (zipfile.BadZipFile, ValueError, OSError, UnicodeDecodeError, EOFError, RecursionError,
                NotImplementedError) as exc:
            raise CorruptFileError(f"{path!r}: unreadable manifest: {type(exc).__name__}: {exc}") from exc
        if not isinstance(mdata, dict) or mdata.get("format") != FORMAT_NAME:
            raise CorruptFileError(f"{path!r} is not a ruvector-graph-attn checkpoint (format {mdata.get('format') if isinstance(mdata, dict) else None!r:.60})")
        version = mdata.get("format_version")
        if version != FORMAT_VERSION:
            raise FormatVersionError(
                f"{path!r} has checkpoint format version {version!r:.40}; this library reads version {FORMAT_VERSION}")
        try:
            manifest = CheckpointManifest.model_validate(mdata)
        except ValidationError as exc:
            raise CorruptFileError(f"{path!r}: invalid manifest: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}") from exc
        blobs: dict[str, bytes] = {}
        for member in ("config.json", "arrays.npz"):
            entry = manifest.files.get(member)
            if entry is None or member not in names:
                raise CorruptFileError(f"{path!r}: member {member} is missing")
            if zf.getinfo(member).file_size != entry.size:
                raise CorruptFileError(f"{path!r}: member {member} has {zf.getinfo(member).file_size} bytes, "
                                       f"manifest says {entry.size} (checksum record mismatch: tampered with or damaged)")
            if member == "config.json" and entry.size > MAX_JSON_BYTES:
                raise CorruptFileError(f"{path!r}: config.json is too large to be a checkpoint config")
            try:
                data = zf.read(member)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
                raise CorruptFileError(f"{path!r}: member {member} is damaged: {exc}") from exc
            if len(data) != entry.size or _sha256(data) != entry.sha256:
                raise CorruptFileError(f"{path!r}: checksum mismatch for {member} (file tampered with or damaged)")
            blobs[member] = data
    try:
        cfg = CheckpointConfig.model_validate_json(blobs["config.json"])
    except ValidationError as exc:
        raise CorruptFileError(f"{path!r}: invalid config.json: {exc.errors()[0]['msg']} at "
                               f"{exc.errors()[0]['loc']}") from exc
    except RecursionError as exc:
        raise CorruptFileError(f"{path!r}: config.json is nested too deeply") from exc
    arrays = _read_npz_checked(blobs["arrays.npz"], path)
    if len(arrays) != manifest.num_arrays:
        raise CorruptFileError(f"{path!r}: {len(arrays)} arrays, manifest says {manifest.num_arrays}")
    return cfg, arrays


def _read_npz_checked(blob: bytes, path: str) -> dict[str, np.ndarray]:
    """``arrays.npz`` member by member: stored members only, each header checked against
    its bytes before anything is allocated (see :func:`read_npy_checked`)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise CorruptFileError(f"{path!r}: unreadable arrays.npz: {exc}") from exc
    arrays: dict[str, np.ndarray] = {}
    with zf:
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(blob):
                raise CorruptFileError(f"{path!r}: arrays.npz member {info.filename} is compressed or oversized")
            if not info.filename.endswith(".npy"):
                raise CorruptFileError(f"{path!r}: arrays.npz member {info.filename} is not a .npy array")
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
                raise CorruptFileError(f"{path!r}: arrays.npz member {info.filename} is damaged: {exc}") from exc
            name = info.filename[:-4]
            if name in arrays:
                raise CorruptFileError(f"{path!r}: arrays.npz holds {name!r} twice")
            arrays[name] = read_npy_checked(data, f"{path!r}: weight {name!r}")
    return arrays


_SIZE_ARG = re.compile(r"channels|features|dim|heads|shape|hidden|size")


def _spec_size_bound(spec: LayerSpec, depth: int = 0) -> int:
    """A cheap upper-bound-like estimate of the parameters ``spec`` allocates, from its
    size arguments, computed before anything is constructed."""
    if depth > 200:
        raise CorruptFileError("config nests layers more than 200 deep")
    ints = []
    for name, v in spec.args.items():
        if not _SIZE_ARG.search(name) or name.startswith("max"):
            continue  # limits, seeds, probabilities: not sizes of parameters
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            if isinstance(x, int) and not isinstance(x, bool) and x > 1:
                ints.append(x)
    ints.sort(reverse=True)
    own = 1
    for x in ints[:2]:  # weight matrices are [out, in] (times heads for attention layers)
        own *= x
    if spec.type in ("GATConv", "GATv2Conv") and isinstance(spec.args.get("heads"), int):
        own *= max(1, spec.args["heads"])
    if spec.type == "MultiHeadAttention":
        own *= 4
    return own + sum(_spec_size_bound(m, depth + 1) for m in spec.modules.values())


def _check_config_size(cfg: CheckpointConfig, arrays: Mapping[str, np.ndarray], path: str) -> None:
    held = sum(int(a.size) for a in arrays.values())
    limit = 4 * held + PARAM_SLACK
    bound = _spec_size_bound(cfg.model)
    if bound > limit:
        raise InputTooLargeError(limit, bound, f"{path!r}: parameters described by config.json "
                                 f"(the file holds {held} weights)")


def read_checkpoint_config(path: str | os.PathLike) -> CheckpointConfig:
    """Verify a checkpoint and return its :class:`CheckpointConfig` (architecture + metadata)."""
    return _read_verified(check_path(path, "checkpoint path"))[0]


def load_checkpoint(path: str | os.PathLike, model: Module | None = None, strict: bool = True) -> Module:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Without ``model`` the architecture is rebuilt from the stored config and the weights
    loaded into it. With ``model`` the stored architecture must equal ``model``'s
    (otherwise :class:`StateDictError`) and the weights are loaded into ``model`` in place.
    """
    cfg, arrays = _read_verified(check_path(path, "checkpoint path"))
    if model is not None:
        try:
            mine = get_config(model)
        except ConfigError:
            mine = None
        if mine is not None and mine != cfg.model:
            raise StateDictError(
                f"checkpoint {os.fspath(path)!r} holds a {cfg.model.type} with a different architecture than the "
                f"given {type(model).__name__}")
        target = model
    else:
        _check_config_size(cfg, arrays, os.fspath(path))
        try:
            target = build_from_config(cfg.model)
        except ConfigError as exc:
            raise StateDictError(f"checkpoint architecture cannot be rebuilt: {exc}") from exc
        except RecursionError as exc:
            raise CorruptFileError(f"{os.fspath(path)!r}: config.json nests layers too deeply") from exc
        except MemoryError as exc:
            raise InvalidInputError(f"{os.fspath(path)!r}: not enough memory to build the model config.json describes") from exc
        except (TypeError, ValueError) as exc:
            if isinstance(exc, RgaError):
                raise StateDictError(f"checkpoint architecture cannot be rebuilt: {exc}") from exc
            raise StateDictError(f"checkpoint architecture cannot be rebuilt: {type(exc).__name__}: {exc}") from exc
        if cfg.dtype in ("float64", "float32", "float16"):
            target.astype(np.dtype(cfg.dtype))
    target.load_state_dict(arrays, strict=strict)
    return target


# -- PyTorch Geometric state_dict names --------------------------------------------------
_LAYOUTS = ("torch", "pyg_sequential", "basic_gnn")


def _graph_children(model: Module) -> list[tuple[str, Module]]:
    from ..graph.sequential import is_graph_layer

    return [(k, m) for k, m in model._modules.items() if is_graph_layer(m)]


def _rename_map(model: Module, layout: str) -> dict[str, str]:
    """our top-level child name -> PyG prefix."""
    if layout not in _LAYOUTS:
        raise InvalidInputError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    if layout == "torch":
        return {k: k for k in model._modules}
    if layout == "pyg_sequential":
        return {k: f"module_{k}" if k.isdigit() else k for k in model._modules}
    mapping = {}
    for i, (k, _) in enumerate(_graph_children(model)):
        mapping[k] = f"convs.{i}"
    for k, m in model._modules.items():
        if k not in mapping and m.state_dict():
            raise InvalidInputError(
                f"layout 'basic_gnn' holds only graph layers with parameters; child {k!r} ({type(m).__name__}) has some")
    return mapping


def export_pyg_state_dict(model: Module, layout: str = "torch") -> "OrderedDict[str, np.ndarray]":
    """The model's weights as numpy arrays under PyTorch Geometric names.

    Layers already use PyG's per-layer names (``lin.weight``, ``att_src``, ``lin_l.bias``,
    ``nn.0.weight``, ``eps`` ...). ``layout`` names the container: ``"torch"`` for
    ``torch.nn.Sequential`` / ``ModuleList`` (``0.lin.weight``), ``"pyg_sequential"`` for
    ``torch_geometric.nn.Sequential`` (``module_0.lin.weight``), ``"basic_gnn"`` for PyG's
    ``models.GAT/GraphSAGE/GIN`` (graph layers as ``convs.0``, ``convs.1`` ...). Load the
    result with ``torch_model.load_state_dict({k: torch.from_numpy(v) ...})``.
    """
    sd = model.state_dict()
    if layout == "torch" or not model._modules:
        return OrderedDict((k, v.copy()) for k, v in sd.items())
    mapping = _rename_map(model, layout)
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in sd.items():
        head, _, rest = k.partition(".")
        if head not in mapping:
            continue
        out[f"{mapping[head]}.{rest}" if rest else mapping[head]] = v.copy()
    return out


def import_pyg_state_dict(model: Module, state_dict: Mapping[str, Any], layout: str = "torch",
                          strict: bool = True) -> Module:
    """Load a PyG / torch ``state_dict`` (numpy arrays or tensors) into ``model`` (inverse of
    :func:`export_pyg_state_dict`). Entries PyG keeps but this library has no use for are
    reported as unexpected keys unless ``strict=False``."""
    if not isinstance(state_dict, Mapping):
        raise InvalidInputError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
    if layout == "torch" or not model._modules:
        return model.load_state_dict(state_dict, strict=strict)
    inverse = {v: k for k, v in _rename_map(model, layout).items()}
    renamed: OrderedDict[str, Any] = OrderedDict()
    for k, v in state_dict.items():
        for prefix, ours in inverse.items():
            if k == prefix or k.startswith(prefix + "."):
                renamed[ours + k[len(prefix):]] = v
                break
        else:
            renamed[k] = v
    return model.load_state_dict(renamed, strict=strict)
