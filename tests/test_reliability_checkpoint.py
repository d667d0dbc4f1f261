"""Regression tests: checkpoint and index manifests that try to exhaust memory or the stack.
Each crafted file is fully re-sealed (checksums recomputed), as a forger would."""
from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile

import numpy as np
import pytest

import ruvector_graph_attn as rga
from ruvector_graph_attn.errors import CorruptFileError, InputTooLargeError, RgaError
from ruvector_graph_attn.training import checkpoint as C

from _reliability import assert_child_ok, run_child, small_index


def _model():
    return rga.nn.Sequential(rga.nn.Linear(4, 8), rga.nn.ReLU(), rga.nn.Linear(8, 2))


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, members, compression=zipfile.ZIP_STORED):
    man = json.loads(members["manifest.json"])
    for name in ("config.json", "arrays.npz"):
        man["files"][name] = {"sha256": hashlib.sha256(members[name]).hexdigest(), "size": len(members[name])}
    members = dict(members, **{"manifest.json": json.dumps(man).encode()})
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for k, v in members.items():
            zf.writestr(k, v)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.ckpt"
    C.save_checkpoint(_model(), path)
    return path


def test_config_declaring_a_huge_layer_is_refused_before_allocating(saved):
    mem = _members(saved)
    cfg = json.loads(mem["config.json"])
    cfg["model"]["modules"]["0"]["args"].update(in_features=2 ** 20, out_features=2 ** 20)
    mem["config.json"] = json.dumps(cfg).encode()
    _write(saved, mem)
    with pytest.raises(InputTooLargeError, match="config.json"):
        C.load_checkpoint(saved)


def _npy_with_header(shape, dtype="<f4", payload=b"\0" * 64):
    hdr = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    hdr += b" " * (63 - (10 + len(hdr)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + payload


def test_npy_header_declaring_terabytes_is_refused(saved):
    mem = _members(saved)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(mem["arrays.npz"])) as z, zipfile.ZipFile(buf, "w") as out:
        for n in z.namelist():
            out.writestr(n, _npy_with_header((2 ** 20, 2 ** 20)) if n == "0.weight.npy" else z.read(n))
    mem["arrays.npz"] = buf.getvalue()
    _write(saved, mem)
    with pytest.raises(CorruptFileError, match="header declares"):
        C.load_checkpoint(saved)


def test_deeply_nested_manifest_and_config_are_refused(saved, tmp_path):
    mem = _members(saved)
    deep = b"[" * 100_000 + b"]" * 100_000
    bad = dict(mem, **{"manifest.json": deep})
    with zipfile.ZipFile(saved, "w") as zf:
        for k, v in bad.items():
            zf.writestr(k, v)
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)
    depth = 5000
    spec = '{"type": "Sequential", "modules": {"0": ' * depth + '{"type": "Identity"}' + "}}" * depth
    mem["config.json"] = ('{"model": ' + spec + ', "dtype": "float32", "metadata": {}}').encode()
    _write(saved, mem)
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(saved)
    idx_path = tmp_path / "idx"
    small_index(idx_path)
    (idx_path / "manifest.json").write_bytes(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)
    with pytest.raises(CorruptFileError):
        rga.HNSWIndex.load(idx_path)


def test_zip_bomb_is_refused_without_inflating(tmp_path):
    """A deflated member of 1 GB zeros (about 1 MB on disk): refused from the directory alone;
    the child's peak memory stays far below the member's size."""
    path = tmp_path / "bomb.ckpt"
    C.save_checkpoint(_model(), path)
    mem = _members(path)
    zeros = bytes(1 << 24)
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as inner:
        with inner.open("0.weight.npy", "w", force_zip64=True) as fh:
            fh.write(_npy_with_header((2 ** 28,), payload=b""))
            for _ in range(64):
                fh.write(zeros)
    mem["arrays.npz"] = raw.getvalue()
    _write(path, mem, compression=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 8 * 2 ** 20
    proc = run_child(f"""
        import resource
        import ruvector_graph_attn as rga
        try:
            rga.load_checkpoint({str(path)!r})
            print("LOADED")
        except rga.RgaError as exc:
            print("REFUSED", type(exc).__name__)
        # peak RSS of this process image (ru_maxrss would include the parent's before exec)
        hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
        print("MAXRSS_KB", int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    assert_child_ok(proc)
    assert "REFUSED CorruptFileError" in proc.stdout
    rss_kb = int(proc.stdout.split("MAXRSS_KB")[1].split()[0])
    assert rss_kb < 600_000, rss_kb  # the interpreter + numpy + numba, never the 1 GB member


def test_checkpoint_path_errors_are_typed(tmp_path):
    with pytest.raises(RgaError):
        C.load_checkpoint(tmp_path)  # a directory
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CorruptFileError):
        C.load_checkpoint(tmp_path / "empty.ckpt")
    with pytest.raises(RgaError):
        C.save_checkpoint(_model(), tmp_path)  # a directory as the target
    with pytest.raises(RgaError):
        C.save_checkpoint(_model(), tmp_path / "no" / "such" / "dir" / "m.ckpt")


def test_round_trip_still_exact(saved):
    m = _model()
    loaded = C.load_checkpoint(saved)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    assert loaded(x).shape == (3, 2) and np.isfinite(loaded(x)).all()
    assert set(loaded.state_dict()) == set(m.state_dict())
