"""The FastAPI application: routes, bearer-token gate, body-size limit, error mapping, metrics.

:func:`create_app` returns a plain ``FastAPI`` object, so more routes (static pages) can be
added to it; every path except ``open_paths`` needs the bearer token.

Error bodies are ``{"error": <library error class>, "message": ..., "status": ...}``:

=====================================================  ======  ==========================
condition                                              status  error
=====================================================  ======  ==========================
malformed JSON                                         400     InvalidInputError
body does not match the schema (types, NaN, extras)    422     InvalidInputError
wrong vector dimension                                 422     DimensionMismatchError
other invalid values (k < 1, bad scorer, ...)          422     InvalidInputError/ConfigError
ids unknown to the graph                               404     UnknownIdError
missing or wrong bearer token                          401     AuthenticationError
body, batch, id list or k over the limit               413     InputTooLargeError
scorer needs a layer the server did not load           409     NotFittedError
graph database unreachable or failing                  503     GraphSourceError (or subclass)
request took longer than the per-request timeout       504     RequestTimeoutError
anything else (a bug)                                  500     InternalError
=====================================================  ======  ==========================
"""
from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from ..errors import (
    AuthenticationError, ConfigError, GraphSourceError, InputTooLargeError, NotFittedError, RequestTimeoutError,
    RgaError, UnknownIdError,
)
from .engine import Engine
from .metrics import CONTENT_TYPE, Metrics
from .models import (
    EmbedRequest, EmbedResponse, ErrorResponse, HealthResponse, RerankRequest, RerankResponse, SearchRequest,
    SearchResponse, TraverseRequest, TraverseResponse, VectorsRequest, VectorsResponse,
)

#: the explorer page served at ``/`` (one self-contained HTML file)
EXPLORER_PAGE = Path(__file__).resolve().parent / "static" / "explorer.html"

__all__ = ["create_app", "ServiceSettings", "error_status", "OPEN_PATHS", "ENDPOINTS"]

log = logging.getLogger("ruvector_graph_attn.service")

#: paths answered without a token (the API description and the liveness probe)
OPEN_PATHS = ("/", "/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")
ENDPOINTS = ("/search", "/rerank", "/embed", "/traverse", "/vectors", "/health", "/metrics")
MIN_TOKEN_LENGTH = 16


class ServiceSettings:
    """Transport settings of :func:`create_app`.

    Args:
        token: the bearer token clients must send (``Authorization: Bearer <token>``); required
            (at least 16 characters) unless ``auth=False``. Kept only as bytes for the
            constant-time comparison; never logged or shown in ``repr``.
        auth: ``False`` turns the token check off (an explicit choice: ``--no-auth``).
        max_body_bytes: larger request bodies get 413 without being read.
        timeout: seconds per request (queueing included); then 504 ``RequestTimeoutError``.
        workers: threads that run requests (the library's work happens there).
        open_paths: paths reachable without a token.
    """

    def __init__(self, token: Optional[str] = None, auth: bool = True, max_body_bytes: int = 8 << 20,
                 timeout: float = 30.0, workers: int = 4, open_paths: Iterable[str] = OPEN_PATHS):
        if auth:
            if not token:
                raise ConfigError("the service needs a bearer token (set it in the environment variable; "
                                  "or run without authentication explicitly with --no-auth)")
            if len(token) < MIN_TOKEN_LENGTH:
                raise ConfigError(f"the bearer token must have at least {MIN_TOKEN_LENGTH} characters")
        self._token = token.encode() if (auth and token) else None
        self.auth = bool(auth)
        if max_body_bytes < 1 or timeout <= 0 or workers < 1:
            raise ConfigError("max_body_bytes, timeout and workers must be positive")
        self.max_body_bytes = int(max_body_bytes)
        self.timeout = float(timeout)
        self.workers = int(workers)
        self.open_paths = frozenset(open_paths)

    def __repr__(self) -> str:
        return (f"ServiceSettings(auth={'on' if self.auth else 'off'}, max_body_bytes={self.max_body_bytes}, "
                f"timeout={self.timeout}, workers={self.workers})")

    def authorised(self, header: Optional[bytes]) -> bool:
        """Constant-time check of an ``Authorization`` header value."""
        if not self.auth:
            return True
        if not header or len(header) < 7 or header[:7].lower() != b"bearer ":
            # compare anyway so a missing header costs the same as a wrong one
            hmac.compare_digest(self._token, b"-" * len(self._token))
            return False
        return hmac.compare_digest(header[7:].strip(), self._token)


_STATUS = ((AuthenticationError, 401), (UnknownIdError, 404), (NotFittedError, 409), (InputTooLargeError, 413),
           (RequestTimeoutError, 504), (GraphSourceError, 503))


def error_status(exc: BaseException) -> int:
    """HTTP status of a library error (422 for the remaining invalid-input errors)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 422


def _error_body(status: int, name: str, message: str, **extra: Any) -> bytes:
    body = {"error": name, "message": message, "status": status}
    body.update(extra)
    return json.dumps(body).encode()


def _dumps(obj: Any) -> bytes:
    """Compact JSON of a plain result (lists, dicts, str, int, float, bool, None): pydantic-core's
    encoder (part of pydantic, so of the service extra), 5-10x faster than ``json.dumps`` on
    float-heavy answers; the same values (shortest round-trip float text), UTF-8 instead of
    ``\\u`` escapes. ``json.dumps`` for anything it cannot encode."""
    try:
        from pydantic_core import to_json
        return to_json(obj)
    except Exception:  # noqa: BLE001 - e.g. a type pydantic-core does not know: the reference encoder
        return json.dumps(obj, separators=(",", ":")).encode()


def _json(obj: Any, status: int = 200):
    from starlette.responses import Response

    return Response(_dumps(obj), status_code=status, media_type="application/json")


def _json_content_type(headers: Iterable) -> bool:
    """Whether FastAPI would parse this body as JSON: no content-type, ``application/json`` or
    ``application/*+json`` (parameters ignored)."""
    for k, v in headers:
        if k == b"content-type":
            kind = v.split(b";", 1)[0].strip().lower()
            if not kind.startswith(b"application/"):
                return False
            sub = kind[12:]
            return sub == b"json" or sub.endswith(b"+json")
    return True


class _Gate:
    """Pure ASGI middleware: token check, body-size limit (the body is read here once and handed
    on), metrics of every HTTP request, and the fast path of the POST endpoints.

    Fast path: a POST to an endpoint in ``fast`` with a JSON body is parsed and validated
    straight from the bytes by the endpoint's pydantic model (``model_validate_json``, one pass
    in pydantic-core) and answered here, without FastAPI's routing, ``json.loads`` and
    dependency machinery. A body the model rejects (or a non-JSON content type, an empty body)
    goes on to FastAPI unchanged, so every error answer is FastAPI's; errors of the call itself
    get the same answers as through the routes (``answer``).
    """

    def __init__(self, app: Callable, settings: ServiceSettings, metrics: Metrics, fast: Optional[dict] = None,
                 answer: Optional[Callable] = None):
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.fast = {} if fast is None else fast
        self.answer = answer

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "other"
        status = [500]

        async def send_(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        async def reply(code: int, name: str, message: str, headers=()):
            scope["rga.error"] = name
            body = _error_body(code, name, message)
            await send_({"type": "http.response.start", "status": code,
                         "headers": [(b"content-type", b"application/json"),
                                     (b"content-length", str(len(body)).encode()), *headers]})
            await send_({"type": "http.response.body", "body": body})

        t0 = time.perf_counter()
        self.metrics.begin()
        try:
            headers = scope.get("headers") or ()
            if path not in self.settings.open_paths and self.settings.auth:
                auth = None
                for k, v in headers:
                    if k == b"authorization":
                        auth = v
                        break
                if not self.settings.authorised(auth):
                    await reply(401, "AuthenticationError", "missing or wrong bearer token "
                                "(send 'Authorization: Bearer <token>')", [(b"www-authenticate", b"Bearer")])
                    return
            limit = self.settings.max_body_bytes
            for k, v in headers:
                if k == b"content-length":
                    try:
                        declared = int(v)
                    except ValueError:
                        declared = -1
                    if declared > limit:
                        await reply(413, "InputTooLargeError", f"request body too large: {declared} bytes exceeds "
                                    f"the limit of {limit}")
                        return
            if scope["method"] in ("POST", "PUT", "PATCH"):
                chunks, size = [], 0
                while True:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        return
                    chunk = msg.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        await reply(413, "InputTooLargeError", f"request body too large: over the limit of {limit} bytes")
                        return
                    chunks.append(chunk)
                    if not msg.get("more_body", False):
                        break
                body = b"".join(chunks)
                route = self.fast.get(path) if scope["method"] == "POST" and self.answer is not None else None
                if route is not None and body and _json_content_type(headers):
                    from pydantic import ValidationError

                    try:
                        req = route[0].model_validate_json(body)
                    except ValidationError:
                        req = None        # FastAPI answers it (400/422, its messages)
                    if req is not None:
                        code, payload, error = await self.answer(route[1], req, path)
                        if error is not None:
                            scope["rga.error"] = error
                        await send_({"type": "http.response.start", "status": code,
                                     "headers": [(b"content-length", str(len(payload)).encode()),
                                                 (b"content-type", b"application/json")]})
                        await send_({"type": "http.response.body", "body": payload})
                        return
                sent = [False]

                async def receive_():
                    if not sent[0]:
                        sent[0] = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                await self.app(scope, receive_, send_)
            else:
                await self.app(scope, receive, send_)
        except Exception:
            scope["rga.error"] = "InternalError"
            raise
        finally:
            self.metrics.observe(endpoint, status[0], time.perf_counter() - t0, scope.get("rga.error"))


def create_app(engine: Engine, settings: Optional[ServiceSettings] = None, *, warm_up: bool = True,
               on_ready: Optional[Callable[[], None]] = None):
    """The FastAPI app serving ``engine`` (routes in the module docstring; OpenAPI at ``/docs``).

    ``app.state.engine``, ``app.state.settings`` and ``app.state.metrics`` hold the parts, so a
    caller can add routes that use them. ``on_ready`` is called once start-up (warm-up) is done.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.responses import Response

    settings = settings or ServiceSettings(auth=False)
    metrics = Metrics(ENDPOINTS)
    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rga-worker")

    @asynccontextmanager
    async def lifespan(app):
        if warm_up:
            await asyncio.get_running_loop().run_in_executor(executor, engine.warm_up)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            log.info("shutting down: waiting for running requests")
            executor.shutdown(wait=True, cancel_futures=True)
            engine.close()
            log.info("shutdown complete")

    from .. import __version__

    app = FastAPI(title="ruvector-graph-attn service", version=__version__, lifespan=lifespan,
                  description="Graph-aware re-ranking over HTTP/JSON. Send `Authorization: Bearer <token>` "
                              "on every call except /health and the API description.")
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = metrics

    async def run(fn: Callable, req: Any):
        return _json(await call(fn, req))

    async def call(fn: Callable, req: Any):
        # one timer per request that cancels the wait (cheaper than asyncio.wait_for's extra task);
        # a cancelled request that has not started never runs, a running one finishes unobserved
        cfut = executor.submit(fn, req)
        fut = asyncio.wrap_future(cfut)
        expired = []

        def expire():
            expired.append(True)
            fut.cancel()

        timer = asyncio.get_running_loop().call_later(settings.timeout, expire)
        try:
            result = await fut
        except asyncio.CancelledError:
            if not expired:
                raise                     # the client went away or the server is stopping
            raise RequestTimeoutError(
                f"the request took longer than the service's limit of {settings.timeout} s") from None
        finally:
            timer.cancel()
        return result

    def rga_error_answer(exc: RgaError) -> tuple:
        status = error_status(exc)
        extra = {"ids": [i if isinstance(i, (int, str)) else str(i) for i in exc.ids[:100]]} \
            if isinstance(exc, UnknownIdError) else {}
        return status, _error_body(status, type(exc).__name__, str(exc), **extra), type(exc).__name__

    def internal_answer(path: str, exc: Exception) -> tuple:
        log.error("internal error on %s: %s", path, type(exc).__name__, exc_info=exc)
        return 500, _error_body(500, "InternalError", f"internal error ({type(exc).__name__})"), "InternalError"

    async def answer(fn: Callable, req: Any, path: str) -> tuple:
        """``(status, body bytes, error class name or None)`` of one call (the fast path's
        answers; the same as the routes and exception handlers below give)."""
        try:
            return 200, _dumps(await call(fn, req)), None
        except RgaError as exc:
            return rga_error_answer(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: 500, logged
            return internal_answer(path, exc)

    @app.exception_handler(RgaError)
    async def rga_error(request: Request, exc: RgaError):
        status, body, name = rga_error_answer(exc)
        request.scope["rga.error"] = name
        return Response(body, status_code=status, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        malformed = any(e.get("type") == "json_invalid" for e in errs)
        status = 400 if malformed else 422
        parts = []
        for e in errs[:5]:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg')}")
        msg = ("malformed JSON: " if malformed else "invalid request body: ") + "; ".join(parts)
        request.scope["rga.error"] = "InvalidInputError"
        return Response(_error_body(status, "InvalidInputError", msg), status_code=status,
                        media_type="application/json")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        status, body, name = internal_answer(request.url.path, exc)
        request.scope["rga.error"] = name
        return Response(body, status_code=status, media_type="application/json")

    errors = {c: {"model": ErrorResponse} for c in (400, 401, 404, 409, 413, 422, 503, 504)}
    fast: dict = {}     # path -> (request model, engine function): the gate's fast path

    def post(path: str, model: type, response: type, fn: Callable, summary: str) -> None:
        async def endpoint(req):
            return await run(fn, req)

        # FastAPI reads the body model from the signature
        endpoint.__signature__ = inspect.Signature(
            [inspect.Parameter("req", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model)])
        endpoint.__name__ = path.strip("/")
        app.post(path, response_model=response, responses=errors, summary=summary)(endpoint)
        fast[path] = (model, fn)

    post("/search", SearchRequest, SearchResponse, engine.search,
         "re-ranked nearest neighbours of one or many query vectors")
    post("/rerank", RerankRequest, RerankResponse, engine.rerank,
         "re-rank candidates from another retriever with the graph")
    post("/embed", EmbedRequest, EmbedResponse, engine.embed, "one attention-pooled vector for the subgraph around ids")
    post("/traverse", TraverseRequest, TraverseResponse, engine.traverse, "attention-ranked paths from start ids")
    post("/vectors", VectorsRequest, VectorsResponse, engine.vectors, "stored vectors of index ids")

    @app.get("/", response_class=Response, include_in_schema=False)
    async def explorer():
        # the explorer page: static, self-contained (no external resources); its API calls carry
        # the token the user types in, so the page itself needs none
        return Response(EXPLORER_PAGE.read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                                            "script-src 'unsafe-inline'; img-src 'self' data:",
                                 "X-Content-Type-Options": "nosniff"})

    @app.get("/health", response_model=HealthResponse, summary="liveness and what is loaded (no token needed)")
    async def health():
        return _json(engine.health())

    @app.get("/metrics", summary="Prometheus text exposition", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def metrics_():
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.add_middleware(_Gate, settings=settings, metrics=metrics, fast=fast, answer=answer)
    return app
