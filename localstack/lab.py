"""The local DR lab: LocalStack (AWS) and Azurite (Azure Storage), installed, started and stopped by PID.

Usage: python localstack/lab.py install | up|down|status [SERVICE...] | env | run -- CMD...

Everything lives under the lab directory (``DRCTL_LAB_DIR``, default ``<repo>/.lab``): the LocalStack venv,
PID files, logs and emulator scratch data. Only the stdlib is used so that this runs before any project
dependency is installed. Each failure is one line on stderr and a distinct exit code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LAB_SRC = REPO / "localstack"
if not __package__:  # run as a script (`python localstack/lab.py`): make the `localstack` package importable
    sys.path.insert(0, str(REPO))

from localstack import pg  # noqa: E402 - needs the path set just above

EXIT_USAGE = 2
EXIT_INSTALL = 3
EXIT_PORT_TAKEN = 4
EXIT_NOT_READY = 5

# The Azurite development account and key are published by Microsoft for the emulator; they open nothing real.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
LAB_AWS_REGION = "us-east-1"


class LabError(Exception):
    """A lab failure with the exit code that names its kind."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LabConfig:
    """Where the lab lives and which loopback ports it uses; read once from the environment."""

    lab_dir: Path
    aws_port: int
    azure_port: int
    uv: Path
    runner: bool
    boot_delay_s: float

    @classmethod
    def from_env(cls, env: dict[str, str]) -> LabConfig:
        return cls(
            lab_dir=Path(env.get("DRCTL_LAB_DIR", str(REPO / ".lab"))).resolve(),
            aws_port=_port(env, "DRCTL_LAB_AWS_PORT", 4566),
            azure_port=_port(env, "DRCTL_LAB_AZURE_PORT", 10000),
            uv=Path(env.get("DRCTL_UV", str(REPO / ".tools" / "uv" / "bin" / "uv"))),
            runner=_switch(env, "DRCTL_LAB_RUNNER"),
            boot_delay_s=_seconds(env, "DRCTL_LAB_BOOT_DELAY", 3.0),
        )

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def azure_blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.azure_port}/{AZURITE_ACCOUNT}"

    @property
    def localstack_venv(self) -> Path:
        return self.lab_dir / "localstack-venv"

    @property
    def postgres_venv(self) -> Path:
        return self.lab_dir / "postgres-venv"


def _switch(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "on").strip().lower()
    if raw not in ("on", "off", "1", "0", "true", "false"):
        raise LabError(f"{name}={raw!r} is not a switch; set it to on or off", EXIT_USAGE)
    return raw in ("on", "1", "true")


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 600:
        raise LabError(f"{name}={raw!r} is not a number of seconds from 0 to 600", EXIT_USAGE)
    return value


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise LabError(f"{name}={raw!r} is not a port; set it to a number from 1 to 65535", EXIT_USAGE)
    return int(raw)


# --- install -------------------------------------------------------------------------------------------------


def _digest(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def _run_install_step(argv: Sequence[str], cwd: Path, what: str, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise LabError(f"installing {what} failed (exit {proc.returncode}); see {log}", EXIT_INSTALL)


def _install_venv(cfg: LabConfig, venv: Path, lock: Path, what: str) -> None:
    """A venv of its own, synced exactly to ``lock``; a stamp holding the lock's digest makes a repeat a no-op."""
    stamp = venv / ".drctl-stamp"
    want = _digest(lock)
    if stamp.exists() and stamp.read_text() == want:
        return
    log = cfg.lab_dir / "logs" / "install.log"
    if not cfg.uv.exists():
        raise LabError(f"uv not found at {cfg.uv}; run `make setup` first", EXIT_INSTALL)
    _run_install_step(
        [str(cfg.uv), "venv", "-q", "--allow-existing", "--python", sys.executable, str(venv)],
        REPO,
        f"the {what} venv",
        log,
    )
    _run_install_step(
        [
            str(cfg.uv),
            "pip",
            "sync",
            "-q",
            "--require-hashes",
            "--compile-bytecode",  # PYTHONDONTWRITEBYTECODE may be set; compiled, LocalStack starts faster
            "--python",
            str(venv / "bin" / "python"),
            str(lock),
        ],
        REPO,
        what,
        log,
    )
    stamp.write_text(want)


def install(cfg: LabConfig) -> None:
    """Install the pinned emulators and PostgreSQL; each is stamped with its lock's digest, so a repeat is a no-op."""
    _install_venv(cfg, cfg.localstack_venv, LAB_SRC / "requirements-localstack.lock", "LocalStack")
    _install_venv(cfg, cfg.postgres_venv, LAB_SRC / "requirements-postgres.lock", "PostgreSQL")
    log = cfg.lab_dir / "logs" / "install.log"

    npm_lock = LAB_SRC / "package-lock.json"
    npm_stamp = LAB_SRC / "node_modules" / ".drctl-stamp"
    npm_want = _digest(LAB_SRC / "package.json", npm_lock)
    if not (npm_stamp.exists() and npm_stamp.read_text() == npm_want):
        # `npm ci` installs exactly what the lock file says, or fails; it never rewrites the lock.
        _run_install_step(["npm", "ci", "--no-audit", "--no-fund"], LAB_SRC, "Azurite", log)
        npm_stamp.write_text(npm_want)


# --- processes -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One emulator: how to start it, where it listens, how to tell it is ready."""

    name: str
    port: int | None  # None: a lab service that listens on no port of its own (the instance runner)
    argv: tuple[str, ...]
    env: dict[str, str]
    ready: Callable[[], bool]
    ready_timeout_s: float
    marker: str  # a string in the process's command line, so a recycled PID is never mistaken for ours
    stop_grace_s: float


def services(cfg: LabConfig) -> list[Service]:
    localstack_env = {
        "GATEWAY_LISTEN": f"127.0.0.1:{cfg.aws_port}",
        "FILESYSTEM_ROOT": str(cfg.lab_dir / "localstack-fs"),
        # No network beyond the package registries: skip the cert download, the DNS server and analytics.
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "LOCALSTACK_TELEMETRY": "0",
    }
    azurite_bin = LAB_SRC / "node_modules" / ".bin" / "azurite-blob"
    emulators = [
        Service(
            name="localstack",
            port=cfg.aws_port,
            argv=(str(cfg.localstack_venv / "bin" / "python"), "-m", "localstack.runtime.main"),
            env=localstack_env,
            ready=lambda: _localstack_ready(cfg.aws_endpoint),
            ready_timeout_s=120.0,
            marker="localstack.runtime.main",
            stop_grace_s=15.0,
        ),
        Service(
            name="azurite",
            port=cfg.azure_port,
            argv=(
                str(azurite_bin),
                "--silent",
                "--inMemoryPersistence",
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(cfg.azure_port),
                "--skipApiVersionCheck",
                "--loose",
            ),
            env={},
            ready=lambda: _azurite_ready(cfg.azure_blob_endpoint),
            ready_timeout_s=60.0,
            marker="azurite",
            # In-memory Azurite has nothing to flush, and it logs "closed" on SIGTERM but then lingers.
            stop_grace_s=2.0,
        ),
    ]
    return [*emulators, runner_service(cfg)] if cfg.runner else emulators


def runner_service(cfg: LabConfig) -> Service:
    """The instance runner (``localstack/runner.py``): EC2 instances that opt in run their user data here. It
    needs boto3, so it runs on the project's venv, after LocalStack; it is ready once it has polled EC2."""
    return Service(
        name="runner",
        port=None,
        argv=(str(REPO / ".venv" / "bin" / "python"), "-m", "localstack.runner"),
        env={
            **lab_env(cfg),
            "DRCTL_LAB_DIR": str(cfg.lab_dir),
            "DRCTL_LAB_BOOT_DELAY": str(cfg.boot_delay_s),
            "PYTHONPATH": str(REPO),
        },
        ready=lambda: _runner_ready(cfg),
        ready_timeout_s=60.0,
        marker="localstack.runner",
        # The runner stops every instance's processes before it exits (each gets a few seconds).
        stop_grace_s=30.0,
    )


def runner_state(cfg: LabConfig) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((cfg.lab_dir / "run" / "runner-state.json").read_text())
    except (OSError, ValueError):
        return None
    return state


def _runner_ready(cfg: LabConfig) -> bool:
    # Ready when the runner has polled EC2 without error in the last few seconds (its loop runs twice a second).
    state = runner_state(cfg)
    return state is not None and state.get("error") is None and time.time() - float(state.get("polled_at", 0)) < 5


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL built by us
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _localstack_ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2) as resp:  # noqa: S310
            body = resp.read().decode()
    except (urllib.error.URLError, OSError):
        return False
    return '"s3"' in body


def _azurite_ready(blob_endpoint: str) -> bool:
    # Any HTTP answer (an unauthenticated list is refused with 403) proves the blob service is serving.
    return _http_status(f"{blob_endpoint}?comp=list") is not None


def _pid_file(cfg: LabConfig, svc: Service) -> Path:
    return cfg.lab_dir / "run" / f"{svc.name}.pid"


def _log_file(cfg: LabConfig, svc: Service) -> Path:
    return cfg.lab_dir / "logs" / f"{svc.name}.log"


def _our_pid(cfg: LabConfig, svc: Service) -> int | None:
    """The PID we recorded for this service, if that process is still alive and still the one we started."""
    pid_file = _pid_file(cfg, svc)
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if svc.marker not in cmdline:
        return None
    return pid


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(check: Callable[[], bool], timeout_s: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        if not alive():
            return False
        time.sleep(0.25)
    return check()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(cfg: LabConfig, svc: Service) -> bool:
    """Start one service, or reuse it if ours is already up. Returns True if this call started it."""
    pid = _our_pid(cfg, svc)
    if pid is not None and svc.ready():
        return False
    if pid is None and svc.port is not None and _port_open(svc.port):
        env_name = "DRCTL_LAB_AWS_PORT" if svc.name == "localstack" else "DRCTL_LAB_AZURE_PORT"
        raise LabError(
            f"{svc.name}: port {svc.port} is already in use by a process this lab did not start; "
            f"stop it or choose another port with {env_name}",
            EXIT_PORT_TAKEN,
        )
    if pid is not None:
        # Ours, but unhealthy (hung or half-started): replace it rather than reuse a broken emulator.
        _stop_pid(pid, svc.stop_grace_s)
    if not Path(svc.argv[0]).exists():
        raise LabError(f"{svc.name} is not installed ({svc.argv[0]} missing); run `make setup`", EXIT_INSTALL)
    log = _log_file(cfg, svc)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(cfg, svc).parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        # A session of its own so that stopping the group stops the emulator's children and nothing else.
        proc = subprocess.Popen(
            svc.argv,
            cwd=cfg.lab_dir,
            env={**os.environ, **svc.env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _pid_file(cfg, svc).write_text(str(proc.pid))
    if not _wait_until(svc.ready, svc.ready_timeout_s, alive=lambda: proc.poll() is None):
        _stop_pid(proc.pid, svc.stop_grace_s)
        _pid_file(cfg, svc).unlink(missing_ok=True)
        raise LabError(
            f"{svc.name} did not become ready within {svc.ready_timeout_s:.0f}s; last log lines: {_tail(log)}",
            EXIT_NOT_READY,
        )
    return True


def _stop_pid(pid: int, grace_s: float = 15.0) -> None:
    # SIGTERM first so an emulator can shut down cleanly; the group is killed once the grace period ends.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie that is not our child still has a /proc entry but is already gone.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop(cfg: LabConfig, svc: Service) -> bool:
    pid = _our_pid(cfg, svc)
    _pid_file(cfg, svc).unlink(missing_ok=True)
    if pid is None:
        return False
    _stop_pid(pid, svc.stop_grace_s)
    return True


# --- commands ------------------------------------------------------------------------------------------------


def lab_env(cfg: LabConfig) -> dict[str, str]:
    """The conventional settings boto3 and the Azure SDK already read; unset, the same code talks to the clouds."""
    conn = (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={cfg.azure_blob_endpoint};"
    )
    env = {
        "AWS_ENDPOINT_URL": cfg.aws_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": LAB_AWS_REGION,
        "AZURE_STORAGE_CONNECTION_STRING": conn,
    }
    # Whether lab instances run anything (the seeder does not wait for production's database without the runner).
    env["DRCTL_LAB_RUNNER"] = "on" if cfg.runner else "off"
    # The lab database's password (random per lab) and the PostgreSQL client tools db.restore runs, once installed.
    with contextlib.suppress(pg.PgError):
        env["DRCTL_PG_BIN"] = str(pg.pg_bin(cfg.lab_dir))
        env[pg.PASSWORD_VAR] = pg.lab_password(cfg.lab_dir)
    return env


def _select(cfg: LabConfig, names: Sequence[str]) -> list[Service]:
    known = services(cfg)
    if not cfg.runner and "runner" in names:
        raise LabError("the instance runner is off (DRCTL_LAB_RUNNER=off); unset it to use the runner", EXIT_USAGE)
    unknown = sorted(set(names) - {s.name for s in known})
    if unknown:
        raise LabError(f"unknown service {', '.join(unknown)}; use localstack, azurite or runner", EXIT_USAGE)
    return [s for s in known if not names or s.name in names]


def _select_to_stop(cfg: LabConfig, names: Sequence[str]) -> list[Service]:
    """What ``down`` stops: the runner too, even with DRCTL_LAB_RUNNER=off, should one started earlier still run."""
    every = [*services(cfg), *([] if cfg.runner else [runner_service(cfg)])]
    unknown = sorted(set(names) - {s.name for s in every})
    if unknown:
        raise LabError(f"unknown service {', '.join(unknown)}; use localstack, azurite or runner", EXIT_USAGE)
    return [s for s in every if not names or s.name in names]


def up(cfg: LabConfig, names: Sequence[str] = ()) -> list[Service]:
    started: list[Service] = []
    try:
        for svc in _select(cfg, names):
            verb = "started" if start(cfg, svc) else "reused"
            if verb == "started":
                started.append(svc)
            print(f"lab: {svc.name} {verb}{_where(svc)}", file=sys.stderr)
    except LabError:
        for svc in started:
            stop(cfg, svc)
        raise
    return started


def _where(svc: Service) -> str:
    return f" on 127.0.0.1:{svc.port}" if svc.port is not None else ""


def instance_lines(cfg: LabConfig) -> list[str]:
    """One line per lab instance whose program the runner started and that is still alive."""
    state = runner_state(cfg)
    if state is None:
        return []
    lines = []
    for iid, inst in sorted(state.get("instances", {}).items()):
        if inst.get("alive") and _alive(int(inst["pid"])):
            lines.append(f"  instance {iid} pid {inst['pid']} {inst['private_ip']} ({inst['region']})")
    return lines


def down(cfg: LabConfig, only: Sequence[Service] | None = None) -> None:
    # Reverse order: the runner stops its instances while LocalStack still answers.
    for svc in reversed(only if only is not None else _select_to_stop(cfg, ())):
        if stop(cfg, svc):
            print(f"lab: {svc.name} stopped", file=sys.stderr)


def status(cfg: LabConfig, which: Sequence[Service]) -> int:
    all_up = True
    for svc in which:
        pid = _our_pid(cfg, svc)
        healthy = pid is not None and svc.ready()
        all_up = all_up and healthy
        state = f"running (pid {pid})" if healthy else ("unhealthy" if pid is not None else "stopped")
        print(f"{svc.name:<11} {state:<22}{_where(svc)}  log: {_log_file(cfg, svc)}")
    if not cfg.runner:
        print("runner      off (DRCTL_LAB_RUNNER=off): lab instances run nothing")
    for line in instance_lines(cfg):
        print(line)
    return 0 if all_up else 1


@contextlib.contextmanager
def _lab_for_command(cfg: LabConfig) -> Iterator[None]:
    started = up(cfg)
    try:
        yield
    finally:
        # Only what this command started is stopped: a lab the developer brought up stays up.
        down(cfg, started)


def run_with_lab(cfg: LabConfig, argv: Sequence[str]) -> int:
    if not argv:
        raise LabError("run needs a command after `--`", EXIT_USAGE)
    with _lab_for_command(cfg):
        env = {**os.environ, **lab_env(cfg)}
        # Forward Ctrl-C to the child only; the lab is stopped by the finally clause either way.
        proc = subprocess.Popen(list(argv), env=env)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            return 130


def _dispatch(cfg: LabConfig, cmd: str, rest: list[str]) -> int:
    if cmd == "install":
        install(cfg)
    elif cmd == "up":
        up(cfg, rest)
    elif cmd == "down":
        down(cfg, _select_to_stop(cfg, rest))
    elif cmd == "status":
        return status(cfg, _select(cfg, rest))
    elif cmd == "env":
        for key, value in lab_env(cfg).items():
            if key == pg.PASSWORD_VAR:
                # Read from its private file when the line runs: the password itself is never printed.
                secret_file = shlex.quote(str(cfg.lab_dir / "secrets" / "db-password"))
                print(f'export {key}="$(cat {secret_file})"')
            else:
                print(f"export {key}={shlex.quote(value)}")
    elif cmd == "run":
        return run_with_lab(cfg, rest[1:] if rest[:1] == ["--"] else rest)
    else:
        raise LabError(f"unknown command {cmd!r}; use install, up, down, status, env or run", EXIT_USAGE)
    return 0


def main(args: Sequence[str]) -> int:
    if not args:
        print("usage: lab.py install | up|down|status [SERVICE...] | env | run -- CMD...", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _dispatch(LabConfig.from_env(dict(os.environ)), args[0], list(args[1:]))
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
