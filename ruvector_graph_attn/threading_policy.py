"""Thread safety of the Numba kernels under every Numba threading layer.

Numba runs ``parallel=True`` kernels on one of three threading layers. ``tbb`` and ``omp``
accept parallel kernels launched from several Python threads at once. ``workqueue`` does
not: two threads entering parallel kernels at the same time make it print "Terminating:
Nested parallel kernel launch detected" and abort the whole process. Users select it with
``NUMBA_THREADING_LAYER=workqueue``, and Numba falls back to it when neither TBB nor OpenMP
loads (or for ``forksafe`` without TBB).

Policy: when the layer Numba will use is (or may be) ``workqueue``, every kernel of
``ruvector_graph_attn.kernels`` is called under one process-wide lock, so concurrent
callers queue instead of aborting; each kernel still uses all of Numba's threads. With
``tbb`` or ``omp`` nothing is locked. The decision is taken when the kernels are imported
and again whenever :func:`guard_kernels` is called (the ``train`` command calls it after
``--threading-layer``); changing ``numba.config.THREADING_LAYER`` by hand after the first
parallel kernel ran has no effect in Numba itself, so it has none here either.
"""
from __future__ import annotations

import importlib
import pkgutil
import threading

_LOCK = threading.RLock()
_state = {"locked": False}


def predicted_layer() -> str:
    """The threading layer Numba uses (or will use at its first parallel kernel):
    ``"tbb"``, ``"omp"``, ``"workqueue"``, or ``"unknown"`` when it cannot tell."""
    from numba import config

    try:  # already launched: Numba knows
        from numba.np.ufunc import parallel

        if parallel._is_initialized:
            import numba

            return str(numba.threading_layer())
    except Exception:  # noqa: BLE001  private API moved: fall back to the prediction
        pass
    t = str(config.THREADING_LAYER).lower()

    def loads(name: str) -> bool:
        try:
            if name == "tbb":
                from numba.np.ufunc import parallel

                parallel._check_tbb_version_compatible()
                importlib.import_module("numba.np.ufunc.tbbpool")
            elif name == "omp":
                importlib.import_module("numba.np.ufunc.omppool")
            else:
                importlib.import_module("numba.np.ufunc.workqueue")
            return True
        except Exception:  # noqa: BLE001  ImportError, version mismatch
            return False

    if t in ("tbb", "omp", "workqueue"):
        return t if loads(t) else "unknown"
    order = {"default": list(config.THREADING_LAYER_PRIORITY), "safe": ["tbb"], "threadsafe": ["tbb", "omp"],
             "forksafe": ["tbb", "workqueue"]}.get(t)
    if order is None:
        return "unknown"
    for name in order:
        if loads(name):
            return name
    return "unknown"


def needs_lock() -> bool:
    """True unless the layer is known to accept concurrent parallel launches."""
    return predicted_layer() not in ("tbb", "omp")


def kernels_locked() -> bool:
    """Whether the kernels are currently called under the process-wide lock."""
    return _state["locked"]


def _locked_class(base: type) -> type:
    cache = _locked_class.__dict__.setdefault("cache", {})
    if base not in cache:
        def __call__(self, *args, **kwargs):
            with _LOCK:
                return base.__call__(self, *args, **kwargs)

        cache[base] = type(f"Locked{base.__name__}", (base,), {"__call__": __call__, "__module__": __name__})
        globals()[cache[base].__name__] = cache[base]  # picklable by reference
    return cache[base]


def guard_kernels() -> bool:
    """Apply the policy to every kernel module; returns whether kernels are now locked.
    Locking is one-way (a process that may run ``workqueue`` stays serialised)."""
    if _state["locked"] or not needs_lock():
        return _state["locked"]
    from numba.core.registry import CPUDispatcher

    import ruvector_graph_attn.kernels as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for value in list(vars(mod).values()):
            if isinstance(value, CPUDispatcher) and not type(value).__name__.startswith("Locked"):
                value.__class__ = _locked_class(type(value))
    _state["locked"] = True
    return True
