"""Build, start and stop the embedded Neo4j test server (``connectors/neo4j/server/``).

The server is a tiny Maven project: one Java class (``org.ruvector.rga.EmbeddedNeo4j``) that
starts an embedded Neo4j Community DBMS 5.26 LTS with the Bolt connector on ``127.0.0.1:PORT``
and a given data directory, prints ``RGA-NEO4J-READY bolt://127.0.0.1:PORT`` and shuts down
cleanly on SIGTERM. It serves tests, benchmarks and demos; it is not a production deployment.

>>> with Neo4jServer() as srv:                     # builds once, then starts on a free port
...     g = Neo4jGraph(srv.uri, auth=srv.auth)

Build: ``mvn -B -q package`` writes ``classes/`` and ``classpath.txt`` (the runtime classpath
into the local Maven repository) to the build folder -- ``connectors/neo4j/server/target/`` or
``$RGA_NEO4J_BUILD_DIR`` -- together with a stamp holding the sha256 of ``pom.xml`` and the Java
sources; a later start rebuilds only when that hash changed or a classpath entry disappeared.
The first build downloads Neo4j's jars into ``~/.m2`` (minutes); later ones take seconds.

Plugin: by default the server also loads the plugin jar of ``connectors/neo4j/plugin/`` (the
``rga.search``/``rga.rerank`` procedures; built the same way, cached by its own source hash in
``connectors/neo4j/plugin/target/`` or ``$RGA_NEO4J_BUILD_DIR/plugin``). The embedded DBMS does
not scan its classpath for procedures; it loads jars from its plugin directory, so the jar is
copied into a fresh folder and the launcher sets ``server.directories.plugins`` to it
(``--plugins DIR``), the same mechanism a standalone server uses for its ``plugins/`` folder.

Auth is on: the password of user ``neo4j`` is random per server unless given, handed to the
JVM through an environment variable (not the command line), and never printed.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Union

from ruvector_graph_attn.errors import Neo4jServerError

__all__ = ["Neo4jServer", "Neo4jServerError", "build_server", "build_plugin", "free_port", "SERVER_DIR",
           "PLUGIN_DIR"]

SERVER_DIR = Path(__file__).resolve().parent / "server"
PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
PLUGIN_JAR = "rga-neo4j-plugin-0.1.0.jar"
MAIN_CLASS = "org.ruvector.rga.EmbeddedNeo4j"
READY_PREFIX = "RGA-NEO4J-READY "
PASSWORD_ENV = "RGA_NEO4J_PASSWORD"
_STAMP = "rga-source.sha256"
_build_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminate_process(proc: subprocess.Popen, timeout: float = 30.0) -> Optional[int]:
    """SIGTERM a running child, wait up to ``timeout`` s for a clean exit, then SIGKILL it;
    returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def _source_hash(src_dir: Path) -> str:
    h = hashlib.sha256()
    files = [src_dir / "pom.xml"] + sorted(f for f in (src_dir / "src").rglob("*") if f.is_file())
    for f in files:
        h.update(str(f.relative_to(src_dir)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _default_build_dir(src_dir: Path, sub: str = "") -> Path:
    env = os.environ.get("RGA_NEO4J_BUILD_DIR")
    if env:
        return Path(env).resolve() / sub if sub else Path(env).resolve()
    target = src_dir / "target"
    if os.access(src_dir, os.W_OK):
        return target
    return Path(tempfile.gettempdir()) / f"rga-neo4j-{sub or 'server'}-build"


def _classpath_ok(build_dir: Path) -> bool:
    cp = build_dir / "classpath.txt"
    if not (build_dir / "classes").is_dir() or not cp.is_file():
        return False
    entries = [e for e in cp.read_text().strip().split(os.pathsep) if e]
    return bool(entries) and all(os.path.exists(e) for e in entries)


def _maven_build(src_dir: Path, bdir: Path, ok, what: str, force: bool, timeout: float) -> None:
    """``mvn package`` of ``src_dir`` into ``bdir`` unless the stamp there holds the sha256 of the
    sources and ``ok(bdir)`` holds."""
    if not (src_dir / "pom.xml").is_file():
        raise Neo4jServerError(f"the {what} sources are missing: {src_dir / 'pom.xml'} not found")
    with _build_lock:
        want = _source_hash(src_dir)
        stamp = bdir / _STAMP
        if not force and stamp.is_file() and stamp.read_text().strip() == want and ok(bdir):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise Neo4jServerError(f"Maven ('mvn') is not on PATH; it is needed to build the {what}")
        if shutil.which("java") is None:
            raise Neo4jServerError(f"Java ('java') is not on PATH; the {what} needs Java 17+")
        bdir.mkdir(parents=True, exist_ok=True)
        cmd = [mvn, "-B", "-q", "-f", str(src_dir / "pom.xml"), f"-Drga.build.dir={bdir}", "package"]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise Neo4jServerError(f"building the {what} took over {timeout:.0f} s") from exc
        if proc.returncode != 0 or not ok(bdir):
            tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
            raise Neo4jServerError(f"building the {what} failed (mvn exit {proc.returncode}):\n{tail}")
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(want + "\n")
        os.replace(tmp, stamp)


def build_server(build_dir: Optional[Union[str, os.PathLike]] = None, *, force: bool = False,
                 timeout: float = 1800.0, server_dir: Path = SERVER_DIR) -> str:
    """Build the launcher if its sources changed; return the ``java -cp`` classpath string.

    Raises :class:`Neo4jServerError` when Maven or Java is missing or the build fails (with the
    tail of Maven's output).
    """
    server_dir = Path(server_dir)
    bdir = Path(build_dir).resolve() if build_dir is not None else _default_build_dir(server_dir)
    _maven_build(server_dir, bdir, _classpath_ok, "Neo4j test server", force, timeout)
    deps = (bdir / "classpath.txt").read_text().strip()
    return str(bdir / "classes") + os.pathsep + deps


def build_plugin(build_dir: Optional[Union[str, os.PathLike]] = None, *, force: bool = False,
                 timeout: float = 1800.0, plugin_dir: Path = PLUGIN_DIR) -> Path:
    """Build the Neo4j plugin jar (procedures ``rga.search`` / ``rga.rerank``, sources in
    ``connectors/neo4j/plugin/``) if its sources changed; return the jar's path. Cached like
    :func:`build_server` (sha256 stamp of ``pom.xml`` and ``src/``)."""
    plugin_dir = Path(plugin_dir)
    bdir = Path(build_dir).resolve() if build_dir is not None else _default_build_dir(plugin_dir, "plugin")
    _maven_build(plugin_dir, bdir, lambda d: (d / PLUGIN_JAR).is_file(), "Neo4j plugin", force, timeout)
    return bdir / PLUGIN_JAR


class Neo4jServer:
    """An embedded Neo4j DBMS in a child JVM, as a context manager.

    Args:
        port: Bolt port on 127.0.0.1 (default: a free one).
        data_dir: database folder; default a fresh temporary folder removed on :meth:`stop`.
            Pass a folder to keep data across a restart (the fault tests do).
        password: password of user ``neo4j`` (>= 8 characters; default random). ``auth=False``
            disables authentication.
        heap: JVM ``-Xmx`` (default ``1g``); ``pagecache``: Neo4j page cache (default ``128m``).
        start_timeout: seconds to wait for the ready line and Bolt (the first build is not counted).
        plugins: load the plugin jar (procedures ``rga.search``/``rga.rerank``, built by
            :func:`build_plugin`): it is copied into a fresh plugins folder that the DBMS is
            pointed at (``--plugins``, i.e. ``server.directories.plugins``).

    Attributes ``uri`` (``bolt://127.0.0.1:PORT``) and ``auth`` (``("neo4j", password)`` or
    ``None``) are what :class:`~ruvector_graph_attn.connectors.Neo4jGraph` needs. ``repr`` never
    shows the password.
    """

    def __init__(self, port: Optional[int] = None, data_dir: Optional[Union[str, os.PathLike]] = None,
                 password: Optional[str] = None, auth: bool = True, heap: str = "1g",
                 pagecache: str = "128m", start_timeout: float = 180.0,
                 build_dir: Optional[Union[str, os.PathLike]] = None, plugins: bool = True):
        if password is not None and len(password) < 8:
            raise Neo4jServerError("the Neo4j password must have at least 8 characters")
        self.port = int(port) if port is not None else None
        self._own_dir = data_dir is None
        self._tmp: Optional[str] = None
        self.data_dir: Optional[Path] = Path(data_dir) if data_dir is not None else None
        self._password = (password or secrets.token_urlsafe(18)) if auth else None
        self.heap = heap
        self.pagecache = pagecache
        self.start_timeout = float(start_timeout)
        self.build_dir = build_dir
        self.plugins = bool(plugins)
        self._plugin_tmp: Optional[str] = None
        self.proc: Optional[subprocess.Popen] = None
        self._log_path: Optional[Path] = None
        self._log_file = None
        self._reader: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ info
    @property
    def uri(self) -> str:
        if self.port is None:
            raise Neo4jServerError("the server has not been started")
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def auth(self) -> Optional[tuple]:
        return None if self._password is None else ("neo4j", self._password)

    @property
    def pid(self) -> Optional[int]:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running() else "stopped"
        port = self.port if self.port is not None else "-"
        return f"Neo4jServer(port={port}, auth={'on' if self._password else 'off'}, {state})"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the JVM's stderr (never contains the password)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Neo4jServer":
        if self.running():
            return self
        java = shutil.which("java")
        if java is None:
            raise Neo4jServerError("Java ('java') is not on PATH; the Neo4j test server needs Java 17+")
        cp = build_server(self.build_dir)
        plugin_args: list = []
        if self.plugins:
            jar = build_plugin(None if self.build_dir is None else Path(self.build_dir) / "plugin")
            if self._plugin_tmp is None:
                self._plugin_tmp = tempfile.mkdtemp(prefix="rga-neo4j-plugins-")
            shutil.copy2(jar, Path(self._plugin_tmp) / jar.name)
            plugin_args = ["--plugins", self._plugin_tmp]
        if self.data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="rga-neo4j-")
            self.data_dir = Path(self._tmp) / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        self._log_path = self.data_dir.parent / f"rga-neo4j-{self.port}.stderr.log"
        self._log_file = open(self._log_path, "ab")
        env = dict(os.environ)
        args = [java, f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError", "-cp", cp, MAIN_CLASS,
                "--port", str(self.port), "--data", str(self.data_dir), "--pagecache", self.pagecache,
                "--exit-on-stdin-eof", *plugin_args]
        if self._password is None:
            args.append("--no-auth")
            env.pop(PASSWORD_ENV, None)
        else:
            env[PASSWORD_ENV] = self._password
        ready = threading.Event()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log_file, env=env, start_new_session=True)

        def read_stdout(proc: subprocess.Popen) -> None:
            for raw in proc.stdout:  # drains until the JVM exits
                if raw.decode(errors="replace").startswith(READY_PREFIX):
                    ready.set()

        self._reader = threading.Thread(target=read_stdout, args=(self.proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while not ready.wait(0.1):
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._cleanup_process()
                raise Neo4jServerError(f"the Neo4j test server exited with code {code} before it was ready:\n"
                                       f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise Neo4jServerError(f"the Neo4j test server was not ready within {self.start_timeout:.0f} s")
        self._wait_bolt(deadline)
        return self

    def _wait_bolt(self, deadline: float) -> None:
        from neo4j import GraphDatabase

        last: Optional[BaseException] = None
        while time.monotonic() < deadline:
            try:
                with GraphDatabase.driver(self.uri, auth=self.auth) as drv:
                    drv.verify_connectivity()
                return
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                last = exc
                time.sleep(0.2)
        self.stop()
        raise Neo4jServerError(f"Bolt at {self.uri} did not answer within {self.start_timeout:.0f} s "
                               f"({type(last).__name__})")

    def _cleanup_process(self) -> None:
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self, timeout: float = 30.0, remove_data: Optional[bool] = None) -> None:
        """SIGTERM, wait up to ``timeout`` s for a clean shutdown, then SIGKILL.

        The temporary data folder (when the server made one) is removed unless
        ``remove_data=False``; a folder passed by the caller is kept unless ``remove_data=True``.
        """
        if self.proc is not None:
            terminate_process(self.proc, timeout)
        self._cleanup_process()
        if self._plugin_tmp is not None:
            shutil.rmtree(self._plugin_tmp, ignore_errors=True)
            self._plugin_tmp = None
        if remove_data is None:
            remove_data = self._own_dir
        if remove_data and self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self.data_dir = None
        elif remove_data and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the JVM at once (no clean shutdown; data stays for a restart)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._cleanup_process()

    def restart(self) -> "Neo4jServer":
        """Start again on the same port and data folder (after :meth:`kill` or :meth:`stop`)."""
        if self.running():
            self.stop(remove_data=False)
        return self.start()

    def __enter__(self) -> "Neo4jServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
