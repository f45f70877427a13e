"""Private emulators for the restart faults: an Azurite and a LocalStack of the test's own, on free loopback
ports, that a test may kill and restart mid-copy without touching the shared lab (4566/10000), which other
tests use at the same time.

Each is started and stopped by the PID of the process this module started (the leader of a process group of
its own, so the emulator's children go with it); readiness is polled on the emulator's real endpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from localstack.lab import AZURITE_ACCOUNT, AZURITE_KEY, LabConfig
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO / "localstack" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_METADATA_FILE = "__azurite_db_blob__.json"  # rewritten whole on each save (every 5 s, and on shutdown)
POLL_S = 0.05  # between readiness probes; each wait is bounded by its own deadline


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout_s`` or once ``alive`` says the
    process it waits on has died."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if not alive():
            raise RuntimeError(f"{what}: the process died first")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(POLL_S)


def _answers(url: str) -> str | None:
    """The body of any HTTP answer from ``url`` (an error status is an answer too), or None if none came."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError):
        return None


class PrivateEmulator:
    """One emulator process: started, killed (SIGKILL) or stopped (SIGTERM first) and started again on the
    same port, so the endpoint drctl was given stays valid across the restart."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        workdir: Path,
        ready: Callable[[], bool],
        ready_timeout_s: float,
        closed_marker: str | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.ready = ready
        self.ready_timeout_s = ready_timeout_s
        self.closed_marker = closed_marker
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []
        """Seconds from each start to readiness."""

    def start(self) -> float:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"{self.name} is already running (pid {self.proc.pid})")
        begun = time.monotonic()
        with self.log.open("ab") as out:
            # A session of its own: stopping the group stops the emulator's children and nothing else. The
            # working directory is a scratch one: the repository's localstack/ folder would shadow LocalStack's
            # own package.
            proc = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.proc = proc
        try:
            wait_for(self.ready, self.ready_timeout_s, f"{self.name} ready", alive=lambda: proc.poll() is None)
        except RuntimeError as exc:
            self.kill()
            raise RuntimeError(f"{exc}; last log lines: {self._tail()}") from exc
        seconds = time.monotonic() - begun
        self.starts.append(seconds)
        return seconds

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL once the emulator says it has closed (Azurite saves its metadata and then
        lingers with its sockets closed) or after a bounded wait."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        # The log is appended to across restarts: only a marker written after this SIGTERM counts. Matching one
        # from an earlier stop SIGKILLed Azurite before it saved, and a "graceful" restart lost writes as a kill -9.
        stopped_at = len(self._log_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        marker = self.closed_marker
        with contextlib.suppress(RuntimeError):
            wait_for(
                lambda: proc.poll() is not None or (marker is not None and marker in self._log_text()[stopped_at:]),
                30,
                f"{self.name} closed",
            )
        self.kill()

    def restart(self, graceful: bool) -> float:
        """Stop (``graceful``) or kill the emulator and start it again on the same port; returns the seconds
        the endpoint was down."""
        begun = time.monotonic()
        if graceful:
            self.stop()
        else:
            self.kill()
        self.start()
        return time.monotonic() - begun

    def close(self) -> None:
        self.kill()

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def _tail(self) -> str:
        return " | ".join(self._log_text().strip().splitlines()[-5:]) or "(empty log)"


def private_azurite(workdir: Path) -> tuple[PrivateEmulator, str]:
    """An Azurite blob service that keeps its data on disk (``--location``), so a restart keeps what it had
    saved, and its blob endpoint. Azurite saves its metadata every 5 s and when it shuts down: a graceful restart
    keeps everything, a ``kill -9`` loses what changed in the last few seconds."""
    port = free_port()
    argv = [
        str(AZURITE_BIN),
        "--silent",
        "--location",
        str(workdir / "data"),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--skipApiVersionCheck",
        "--loose",
    ]
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    emulator = PrivateEmulator(
        "azurite",
        argv,
        os.environ,
        workdir,
        # Any HTTP answer (an unsigned listing is refused with 403) proves the blob service is serving.
        ready=lambda: _answers(f"{endpoint}?comp=list") is not None,
        ready_timeout_s=60,
        closed_marker="Azurite Blob service successfully closed",
    )
    return emulator, endpoint


def azurite_saved_since(workdir: Path, moment: float) -> bool:
    """Whether the private Azurite in ``workdir`` has written its metadata to disk since ``moment`` (a
    ``time.time()``): every blob it acknowledged before then now survives a ``kill -9``."""
    try:
        return (workdir / "data" / AZURITE_METADATA_FILE).stat().st_mtime > moment
    except OSError:
        return False


def azurite_connection_string(blob_endpoint: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={blob_endpoint};"
    )


def private_localstack(workdir: Path) -> tuple[PrivateEmulator, str]:
    """A LocalStack of its own (S3 state in memory: a restart starts it empty) and its endpoint, started as the
    lab starts the shared one."""
    port = free_port()
    lab = LabConfig.from_env(dict(os.environ))
    env = {
        **os.environ,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "FILESYSTEM_ROOT": str(workdir / "fs"),
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "LOCALSTACK_TELEMETRY": "0",
    }
    endpoint = f"http://127.0.0.1:{port}"
    emulator = PrivateEmulator(
        "localstack",
        [str(lab.localstack_venv / "bin" / "python"), "-m", "localstack.runtime.main"],
        env,
        workdir,
        ready=lambda: '"s3"' in (_answers(f"{endpoint}/_localstack/health") or ""),
        ready_timeout_s=120,
    )
    return emulator, endpoint
