"""Graph layer benchmark: forward pass of GATConv (4 heads x 16), GATv2Conv (4 x 16),
SAGEConv (mean) and GINConv (2-layer MLP) with 64 input features on synthetic power-law
graphs, side by side with PyTorch Geometric on the same data and the same weights.

``ruvector-graph-attn bench graph`` or ``python benchmarks/graph_bench.py``.

Graphs: ``N`` nodes, ``E`` directed edges whose sources and targets are both drawn from
a Zipf-like distribution ``p(v) ~ rank(v)^-0.8`` over randomly permuted node ids (heavy-
tailed in- and out-degrees, hubs spread over the id range, edges in random order,
duplicates and self loops possible, as in real crawled graphs). Defaults: 1K/10K,
10K/100K and 100K/1M nodes/edges.

Both libraries run in eval mode with 2 threads (``numba.set_num_threads``,
``torch.set_num_threads``); the PyG layer gets our ``state_dict`` and its outputs are
compared with ours (``max|diff|``). Timed runs of the two libraries are interleaved so
that load from other processes hits both alike; the median and the best (minimum) time
are reported -- on a shared machine the minimum is the run least disturbed by other
processes, the median what a user would see under the same load. ``ratio`` is PyG time /
our time (> 1: we are faster). PyG is also timed with torch on one thread (on a busy
2-core machine torch's 2-thread runs can be 50x slower than its 1-thread runs on small
graphs); ``ratio vs faster PyG`` compares against the faster of the two medians. ``peak MB`` is the growth of the process's
resident set during one call (Linux ``VmHWM`` after resetting it through
``/proc/self/clear_refs``; falls back to ``tracemalloc``, which sees numpy but not
Numba or torch allocations, when that file is not writable).
"""
from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from typing import Any, Callable

import numpy as np

from ..fileio import write_atomic
from .common import print_table

LAYERS = ("gat", "gatv2", "sage", "gin")


def build_parser(prog: str = "graph_bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=str, default="1000:10000,10000:100000,100000:1000000",
                   help="comma separated NODES:EDGES pairs")
    p.add_argument("--features", type=int, default=64, help="input features F")
    p.add_argument("--layers", type=str, default=",".join(LAYERS), help=f"subset of {','.join(LAYERS)}")
    p.add_argument("--repeat", type=int, default=7, help="timed runs per library and measurement (median kept)")
    p.add_argument("--threads", type=int, default=2, help="numba and torch threads")
    p.add_argument("--no-pyg", action="store_true", help="do not run PyTorch Geometric even if installed")
    p.add_argument("--no-torch-single", dest="torch_single", action="store_false",
                   help="skip the extra PyG timing with torch on 1 thread (on a busy machine 2 torch threads "
                        "can be far slower than 1, and the fair baseline is the faster of the two)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", type=str, default=None, help="also write the tables to this file")
    return p


def power_law_graph(num_nodes: int, num_edges: int, seed: int = 0, exponent: float = 0.8) -> np.ndarray:
    """``[2, E]`` int64 edges with Zipf-like source and target distributions (see module doc)."""
    rng = np.random.default_rng(seed)
    w = np.arange(1, num_nodes + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    relabel_src = rng.permutation(num_nodes)
    relabel_dst = rng.permutation(num_nodes)
    src = relabel_src[np.searchsorted(cdf, rng.random(num_edges), side="right")]
    dst = relabel_dst[np.searchsorted(cdf, rng.random(num_edges), side="right")]
    return np.ascontiguousarray(np.stack([src, dst]).astype(np.int64))


# -- memory ----------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def _libc() -> Any:
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _fixed_mmap_threshold() -> None:
    """Make glibc serve every allocation >= 128 KiB with mmap and give it back on free
    (``mallopt(M_MMAP_THRESHOLD)`` also stops the threshold from growing), so the resident
    set before a call does not already contain the call's arrays from the previous call."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD


def _trim() -> None:
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _can_reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_kb("VmHWM")
        return True
    except OSError:
        return False


def peak_memory_mb(fn: Callable[[], Any], use_hwm: bool) -> float:
    """Extra memory (MB) one call of ``fn`` needs at its peak."""
    if use_hwm:
        _trim()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = _status_kb("VmRSS")
        fn()
        return max(_status_kb("VmHWM") - before, 0) / 1024.0
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# -- layers ----------------------------------------------------------------------------------
def make_ours(kind: str, f: int, seed: int) -> Any:
    from .. import graph, nn

    if kind == "gat":
        return graph.GATConv(f, 16, heads=4, rng=seed)
    if kind == "gatv2":
        return graph.GATv2Conv(f, 16, heads=4, rng=seed)
    if kind == "sage":
        return graph.SAGEConv(f, 64, aggr="mean", rng=seed)
    if kind == "gin":
        mlp = nn.Sequential(nn.Linear(f, 64, rng=seed), nn.ReLU(), nn.Linear(64, 64, rng=seed + 1))
        return graph.GINConv(mlp)
    raise ValueError(kind)


def make_pyg(kind: str, f: int, state: dict) -> Any:
    import torch
    import torch_geometric.nn as tg

    if kind == "gat":
        layer = tg.GATConv(f, 16, heads=4)
    elif kind == "gatv2":
        layer = tg.GATv2Conv(f, 16, heads=4)
    elif kind == "sage":
        layer = tg.SAGEConv(f, 64, aggr="mean")
    else:
        layer = tg.GINConv(torch.nn.Sequential(torch.nn.Linear(f, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64)))
    layer.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return layer.eval()


LABELS = {"gat": "GATConv 4x16", "gatv2": "GATv2Conv 4x16", "sage": "SAGEConv mean", "gin": "GINConv MLP"}


def _available(kind: str) -> bool:
    import importlib

    mod = {"gat": "gat", "gatv2": "gat", "sage": "sage", "gin": "gin"}[kind]
    try:
        importlib.import_module(f"ruvector_graph_attn.graph.{mod}")
        return True
    except ImportError:
        return False


def _interleaved_times(fa: Callable[[], Any], fb: Callable[[], Any] | None, repeat: int
                       ) -> tuple[list[float], list[float]]:
    """Wall times of ``repeat`` alternating calls of ``fa`` and ``fb`` (seconds)."""
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fa()
        ta.append(time.perf_counter() - t0)
        if fb is not None:
            t0 = time.perf_counter()
            fb()
            tb.append(time.perf_counter() - t0)
    return ta, tb


def run(args: argparse.Namespace) -> int:
    import numba

    threads = max(1, min(args.threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    torch = None
    if not args.no_pyg:
        try:
            import torch  # noqa: F811
            import torch_geometric  # noqa: F401

            torch.set_num_threads(args.threads)
        except ImportError:
            torch = None
    sizes = []
    for item in args.sizes.split(","):
        n, e = item.split(":")
        sizes.append((int(n), int(e)))
    kinds = [k.strip() for k in args.layers.split(",") if k.strip()]
    bad = [k for k in kinds if k not in LAYERS]
    if bad:
        raise SystemExit(f"unknown layers {bad}; choose from {LAYERS}")
    missing = [k for k in kinds if not _available(k)]
    kinds = [k for k in kinds if k not in missing]
    use_hwm = _can_reset_hwm()
    if use_hwm:
        _fixed_mmap_threshold()
    f = args.features
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; numba threads {threads}; "
          f"PyG: {'torch ' + torch.__version__ + ', ' + str(torch.get_num_threads()) + ' threads' if torch else 'not installed / disabled'}; "
          f"memory: {'VmHWM' if use_hwm else 'tracemalloc (numpy only)'}", flush=True)
    if missing:
        print(f"skipped (not in this installation): {', '.join(missing)}")

    # compile every kernel once on a small graph (cache=True keeps it for later processes)
    small_ei = power_law_graph(200, 2000, seed=args.seed)
    small_x = np.random.default_rng(args.seed).standard_normal((200, f)).astype(np.float32)
    for k in kinds:
        make_ours(k, f, args.seed).eval()(small_x, small_ei)

    rows = []
    seed_case = None
    for n, e in sizes:
        ei = power_law_graph(n, e, seed=args.seed)
        x = np.random.default_rng(args.seed + 1).standard_normal((n, f)).astype(np.float32)
        if torch is not None:
            xt, eit = torch.from_numpy(x), torch.from_numpy(ei)
        for k in kinds:
            ours = make_ours(k, f, args.seed).eval()
            call_ours = lambda: ours(x, ei)  # noqa: E731
            out = call_ours()
            call_pyg = None
            diff = float("nan")
            if torch is not None:
                ref = make_pyg(k, f, ours.state_dict())

                def call_pyg(ref=ref):
                    with torch.no_grad():
                        return ref(xt, eit)

                diff = float(np.abs(call_pyg().numpy() - out).max())
            ta, tb = _interleaved_times(call_ours, call_pyg, args.repeat)
            t_ours, b_ours = float(np.median(ta)), float(np.min(ta))
            t_pyg = float(np.median(tb)) if tb else float("nan")
            b_pyg = float(np.min(tb)) if tb else float("nan")
            t_pyg1 = float("nan")
            if call_pyg is not None and args.torch_single:
                torch.set_num_threads(1)
                try:
                    t_pyg1 = float(np.median(_interleaved_times(call_ours, call_pyg, args.repeat)[1]))
                finally:
                    torch.set_num_threads(args.threads)
            m_ours = peak_memory_mb(call_ours, use_hwm)
            m_pyg = peak_memory_mb(call_pyg, use_hwm) if call_pyg is not None else float("nan")
            ratio = t_pyg / t_ours if call_pyg is not None else float("nan")
            best_ratio = b_pyg / b_ours if call_pyg is not None else float("nan")
            row = [LABELS[k], f"{n:,}", f"{e:,}", t_ours * 1e3, t_pyg * 1e3, ratio,
                   b_ours * 1e3, b_pyg * 1e3, best_ratio]
            if args.torch_single:
                row += [t_pyg1 * 1e3, min(t_pyg, t_pyg1) / t_ours]
            rows.append(row + [m_ours, m_pyg, f"{diff:.1e}"])
            if k == "gat" and n == 1000:
                seed_case = (t_ours, b_ours)
            print(f"  done: {LABELS[k]} {n:,}/{e:,}", flush=True)
    headers = ["layer", "nodes", "edges", "ours ms (median)", "PyG ms (median)", "ratio", "ours ms (best)",
               "PyG ms (best)", "ratio (best)"]
    if args.torch_single:
        headers += ["PyG 1-thread ms (median)", "ratio vs faster PyG"]
    headers += ["ours peak MB", "PyG peak MB", "max|diff|"]
    if torch is None:  # our columns only
        keep = [i for i, h in enumerate(headers) if "PyG" not in h and "ratio" not in h and h != "max|diff|"]
        headers = [headers[i] for i in keep]
        shown = [[r[i] for i in keep] for r in rows]
    else:
        shown = rows
    text = print_table(headers, shown, title=(
        f"forward pass, F={f}, eval mode, {args.repeat} interleaved runs each; ratio = PyG time / our time; "
        f"load average now {os.getloadavg()[0]:.2f}"))
    if seed_case is None and "gat" in kinds:
        ei = power_law_graph(1000, 10000, seed=args.seed)
        x = np.random.default_rng(args.seed + 1).standard_normal((1000, f)).astype(np.float32)
        layer = make_ours("gat", f, args.seed).eval()
        ts = _interleaved_times(lambda: layer(x, ei), None, max(args.repeat, 20))[0]
        seed_case = (float(np.median(ts)), float(np.min(ts)))
    if seed_case is not None:
        med, best = seed_case
        line = (f"\nseed case: GATConv (4 heads x 16, F={f}) on 1,000 nodes / 10,000 edges: median "
                f"{med * 1e3:.2f} ms, best {best * 1e3:.2f} ms (target < 5 ms: median "
                f"{'met' if med < 5e-3 else 'NOT met'}, best {'met' if best < 5e-3 else 'NOT met'})")
        print(line)
        text += "\n" + line
    if rows and torch is not None:
        ratios = np.array([r[5] for r in rows], dtype=np.float64)
        best = np.array([r[8] for r in rows], dtype=np.float64)
        line = (f"geometric mean ratio PyG/ours: medians {float(np.exp(np.log(ratios).mean())):.2f} "
                f"(min {ratios.min():.2f}, max {ratios.max():.2f}); best times "
                f"{float(np.exp(np.log(best).mean())):.2f} (min {best.min():.2f}, max {best.max():.2f})")
        print(line)
        text += "\n" + line
    if args.markdown:
        write_atomic(args.markdown, text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
