"""Start the whole local stack — Azurite and the ARM, Key Vault and GitHub stand-ins, and on request
the local Functions host — and describe it as `export NAME=value` lines: the SYNOSCD_* settings
pointing at the stand-ins, plus REQUESTS_CA_BUNDLE and the managed-identity variables, so that with
the file sourced both SynosCD and a plain Azure SDK script reach the stand-ins with no further setup.

With an ops folder the GitHub stand-in's repository starts with its manifests committed; with the
Functions host, a `git push` to that repository delivers a signed push webhook to the host (a
post-receive hook), and the host's timer heals drift on a short local schedule.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.arm import ArmEmulator
from emulators.children import DIE_WITH_PARENT
from emulators.github import GitHubEmulator
from emulators.httpbase import RunningServer, serve
from emulators.identity import DEFAULT_CLIENT_ID, TokenIssuer
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import CertPair, make_self_signed

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: it is the same on every machine).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000001"
RESOURCE_GROUP = "synoscd-local"
ENVIRONMENT = "synoscd-env"
GITHUB_OWNER = "synoscd-demo"
GITHUB_REPO = "ops"
GITHUB_APP_ID = 424242
GITHUB_INSTALLATION_ID = 4242
WEBHOOK_SECRET = "local-webhook-secret"  # local stack only; in Azure it lives in Key Vault
EXAMPLES = REPO_ROOT / "examples"  # an ops repository: apps/ and the synthesizer's inputs/
EXAMPLES_VAULT = "contoso-vault.vault.azure.net"
EXAMPLES_SYNTH_IMAGE = "ghcr.io/contoso/web-fleet-synth:1.0"
CONFIG_PATH = "apps"
# The local Functions host ticks every 5 s and runs a pass every 10 s, so drift heals while you watch
# (in Azure: every minute, and a pass every 300 s).
LOCAL_TIMER = {"SYNOSCD_TIMER_SCHEDULE": "*/5 * * * * *", "SYNOSCD_RECONCILE_INTERVAL_SECONDS": "10"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before 127.0.0.1:{port} answered")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f} s")


def azurite_binary() -> Path:
    path = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `npm ci` in {REPO_ROOT} (make test does it for you)")
    return path


@dataclass
class Azurite:
    proc: subprocess.Popen[bytes]
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{AZURITE_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{AZURITE_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{AZURITE_ACCOUNT};"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


AZURITE_FLAGS = ["--silent", "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck"]


def _spawn_azurite(
    binary: Path, nports: int, flags: Callable[[list[int]], list[str]]
) -> tuple[subprocess.Popen[bytes], list[int]]:
    """Start Azurite on fresh free ports and wait until each answers. free_port() releases its socket
    before Azurite binds it, so a parallel test can take the port in between and Azurite exits at once
    (address in use): then try again on other ports, twice at most."""
    for attempt in range(3):
        ports = [free_port() for _ in range(nports)]
        proc = subprocess.Popen(
            [str(binary), *AZURITE_FLAGS, *flags(ports)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            for port in ports:
                wait_for_port(port, 30, proc)
            return proc, ports
        except Exception as exc:
            Azurite(proc, 0, 0, 0).stop()
            exited = isinstance(exc, RuntimeError) and proc.returncode is not None
            if not exited or attempt == 2:
                raise
    raise AssertionError("unreachable")


def start_azurite() -> Azurite:
    # Azurite logs ":0" for port 0 and never says which port it took, so choose free ports first.
    def flags(ports: list[int]) -> list[str]:
        return [
            arg
            for svc, port in zip(("blob", "queue", "table"), ports, strict=True)
            for arg in (f"--{svc}Host", "127.0.0.1", f"--{svc}Port", str(port))
        ]

    proc, ports = _spawn_azurite(azurite_binary(), 3, flags)
    return Azurite(proc, *ports)


def start_blob_azurite(tls: CertPair) -> Azurite:
    """A blob-only Azurite over HTTPS with OAuth (`--oauth basic`): bearer tokens from the stand-ins'
    managed identity and user-delegation keys work against it, as against a real storage account
    (synthesizer jobs exchange their ResourceList through it). Its own process: the main Azurite
    stays plain HTTP for tables and queues."""

    def flags(ports: list[int]) -> list[str]:
        tls_args = ["--cert", str(tls.cert_file), "--key", str(tls.key_file)]
        return ["--blobHost", "127.0.0.1", "--blobPort", str(ports[0]), "--oauth", "basic", *tls_args]

    proc, ports = _spawn_azurite(azurite_binary().with_name("azurite-blob"), 1, flags)
    return Azurite(proc, ports[0], 0, 0)


def _git(repo_dir: Path) -> list[str]:
    return [
        "git",
        "-C",
        str(repo_dir),
        "-c",
        "user.name=SynosCD",
        "-c",
        "user.email=synoscd@localhost.invalid",
    ]


def init_repo(repo_dir: Path, branch: str) -> Path:
    """An ordinary git work tree with one empty commit; the GitHub stand-in serves what is committed.
    A clone may push to it (the work tree follows the pushed branch, as long as nobody edits it)."""
    repo_dir.mkdir(parents=True, exist_ok=True)
    git = _git(repo_dir)
    subprocess.run([*git, "init", "-q", "-b", branch], check=True)
    subprocess.run([*git, "config", "receive.denyCurrentBranch", "updateInstead"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "Initial commit"], check=True)
    return repo_dir


def ops_files(ops: Path) -> dict[str, Path]:
    """What an ops folder puts in the repository, {repository path: file}. A folder with an `apps/`
    folder (SYNOSCD_GITHUB_CONFIG_PATH) is an ops repository: its files as they are (synthesizer
    inputs too), without hidden files, Python caches and programs. Any other folder gives its
    manifests, under `apps/`. FileNotFoundError when there is no manifest."""
    if not ops.is_dir():
        raise FileNotFoundError(f"--ops {ops}: not a folder")
    layout = (ops / CONFIG_PATH).is_dir()
    files: dict[str, Path] = {}
    for path in sorted(ops.rglob("*")):
        rel = path.relative_to(ops)
        if not path.is_file() or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if layout and path.suffix != ".py":
            files[rel.as_posix()] = path
        elif not layout and path.suffix.lower() in (".yaml", ".yml"):
            files[f"{CONFIG_PATH}/{rel.as_posix()}"] = path
    if not any(p.startswith(CONFIG_PATH + "/") and p.endswith((".yaml", ".yml")) for p in files):
        where = ops / CONFIG_PATH if layout else ops
        raise FileNotFoundError(f"--ops {ops}: no .yaml or .yml manifests in {where}")
    return files


def commit_ops(repo_dir: Path, ops: Path) -> str:
    """Commit an ops folder (see `ops_files`) into the repository."""
    files = ops_files(ops)
    for rel, path in files.items():
        (repo_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, repo_dir / rel)
    git = _git(repo_dir)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", f"Add the ops folder {ops.name}"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def examples_extras(stack: Stack) -> None:
    """What the example ops repository needs from the stand-ins, as examples/demo.py sets it up:
    orders-api's secret lives in another vault, and web-fleet's synthesizer image runs the example
    synthesizer from this checkout (the local stand-in for "ACA pulls the image")."""
    stack.env["SYNOSCD_KEYVAULT_ALLOWED_HOSTS"] = EXAMPLES_VAULT
    stack.arm.images[EXAMPLES_SYNTH_IMAGE] = {
        "command": [sys.executable, str(EXAMPLES / "synthesizers" / "web_fleet.py")],
        "env": {"PYTHONPATH": str(REPO_ROOT), "SSL_CERT_FILE": stack.env["REQUESTS_CA_BUNDLE"]},
        "cwd": None,
    }


def install_push_hook(repo_dir: Path, config: dict[str, str]) -> Path:
    """A post-receive hook: every push to the repository delivers a signed push webhook (through the
    GitHub stand-in, which builds GitHub's payload) to `config['url']`."""
    hooks = repo_dir / ".git" / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    settings = hooks / "push-webhook.json"
    settings.write_text(json.dumps(config), encoding="utf-8")
    settings.chmod(0o600)  # holds the local webhook secret
    hook = hooks / "post-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(REPO_ROOT))} exec {shlex.quote(sys.executable)} "
        f"-m emulators.pushhook {shlex.quote(str(settings))}\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return hook


@dataclass
class FunctionsHostProcess:
    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_functions_host(env: dict[str, str]) -> FunctionsHostProcess:
    """`python -m emulators.functions_host` in its own process, with the stack's settings."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.functions_host", "--port", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        preexec_fn=DIE_WITH_PARENT,
    )
    host = FunctionsHostProcess(proc, f"http://127.0.0.1:{port}")
    try:
        wait_for_port(port, 60, proc)
    except Exception:
        host.stop()
        raise
    return host


@dataclass
class Stack:
    """The running local stack; `env` is what the environment file holds."""

    workdir: Path
    issuer: TokenIssuer
    servers: dict[str, RunningServer] = field(default_factory=dict)
    azurite: Azurite | None = None
    blob: Azurite | None = None  # HTTPS + OAuth blob service (synthesizer jobs)
    functions: FunctionsHostProcess | None = None
    env: dict[str, str] = field(default_factory=dict)
    owns_workdir: bool = False

    @property
    def arm(self) -> ArmEmulator:
        return self.servers["arm"].emulator  # type: ignore[return-value]

    @property
    def github(self) -> GitHubEmulator:
        return self.servers["github"].emulator  # type: ignore[return-value]

    @property
    def keyvault(self) -> KeyVaultEmulator:
        return self.servers["keyvault"].emulator  # type: ignore[return-value]

    def stop(self) -> None:
        if self.functions is not None:  # first: it talks to everything else
            self.functions.stop()
            self.functions = None
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None
        if self.blob is not None:
            self.blob.stop()
            self.blob = None
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stack(
    workdir: Path | None = None,
    with_azurite: bool = True,
    ops: Path | None = None,
    functions: bool = False,
) -> Stack:
    """The stand-ins and Azurite; `ops`: a folder of manifests committed to the GitHub stand-in's
    repository; `functions`: also the local Functions host, with push webhooks wired to it."""
    owns = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="synoscd-stack-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir=workdir, issuer=TokenIssuer(), owns_workdir=owns)
    try:
        _start(stack, with_azurite)
        repo_dir = Path(stack.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"])
        if ops is not None:
            commit_ops(repo_dir, ops)
            if ops.resolve() == EXAMPLES:
                examples_extras(stack)
        if functions:
            if stack.azurite is None:
                raise ValueError("the Functions host needs Azurite (its state table)")
            stack.env.update(LOCAL_TIMER)
            stack.functions = start_functions_host(stack.env)
            webhook = f"{stack.functions.url}/api/github/webhook"
            install_push_hook(
                repo_dir,
                {
                    "github": stack.env["SYNOSCD_GITHUB_API_URL"],
                    "ca": stack.env["REQUESTS_CA_BUNDLE"],
                    "url": webhook,
                    "secret": WEBHOOK_SECRET,
                    "owner": GITHUB_OWNER,
                    "name": GITHUB_REPO,
                },
            )
            stack.env["SYNOSCD_EMULATOR_FUNCTIONS_URL"] = stack.functions.url
            stack.env["SYNOSCD_EMULATOR_WEBHOOK_URL"] = webhook
            stack.env["SYNOSCD_EMULATOR_PIDS"] += f" {stack.functions.proc.pid}"
    except BaseException:
        stack.stop()
        raise
    return stack


def _start(stack: Stack, with_azurite: bool) -> None:
    tls = make_self_signed(stack.workdir / "tls")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    arm = ArmEmulator(stack.issuer, SUBSCRIPTION_ID, RESOURCE_GROUP, ENVIRONMENT)
    vault = KeyVaultEmulator(stack.issuer)
    github = GitHubEmulator(stack.workdir / "repos", GITHUB_APP_ID, public_pem, GITHUB_INSTALLATION_ID)
    for name, emulator in (("arm", arm), ("keyvault", vault), ("github", github)):
        stack.servers[name] = serve(emulator, tls)
    repo_dir = init_repo(stack.workdir / "repos" / GITHUB_OWNER / GITHUB_REPO, "main")
    vault_url = stack.servers["keyvault"].url
    for name, value in (
        ("github-app-id", str(GITHUB_APP_ID)),
        ("github-app-installation-id", str(GITHUB_INSTALLATION_ID)),
        ("github-app-private-key", private_pem),
        ("github-webhook-secret", WEBHOOK_SECRET),
    ):
        vault.seed(vault_url, name, value)
    if with_azurite:
        stack.azurite = start_azurite()
        stack.blob = start_blob_azurite(tls)
    arm_url = stack.servers["arm"].url
    stack.env = {
        "SYNOSCD_ARM_ENDPOINT": arm_url,
        "SYNOSCD_AZURE_SUBSCRIPTION_ID": SUBSCRIPTION_ID,
        "SYNOSCD_AZURE_RESOURCE_GROUP": RESOURCE_GROUP,
        "SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT": ENVIRONMENT,
        "SYNOSCD_AZURE_MANAGED_IDENTITY_CLIENT_ID": DEFAULT_CLIENT_ID,
        "SYNOSCD_GITHUB_API_URL": stack.servers["github"].url,
        "SYNOSCD_GITHUB_APP_ID": str(GITHUB_APP_ID),
        "SYNOSCD_GITHUB_APP_INSTALLATION_ID": str(GITHUB_INSTALLATION_ID),
        "SYNOSCD_GITHUB_APP_PRIVATE_KEY": private_pem,
        "SYNOSCD_GITHUB_REPO_OWNER": GITHUB_OWNER,
        "SYNOSCD_GITHUB_REPO_NAME": GITHUB_REPO,
        "SYNOSCD_GITHUB_BRANCH": "main",
        "SYNOSCD_GITHUB_CONFIG_PATH": CONFIG_PATH,
        "SYNOSCD_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SYNOSCD_KEYVAULT_URL": vault_url,
        # The managed-identity protocol azure-identity speaks in App Service and Functions.
        "IDENTITY_ENDPOINT": f"{arm_url}/msi/token",
        "IDENTITY_HEADER": stack.issuer.identity_header,
        "REQUESTS_CA_BUNDLE": str(tls.cert_file),
        # Not read by SynosCD: where tests and the demo drive the stand-ins.
        "SYNOSCD_EMULATOR_GITHUB_REPO_DIR": str(repo_dir),
        "SYNOSCD_EMULATOR_WORKDIR": str(stack.workdir),
        "SYNOSCD_EMULATOR_PIDS": " ".join(
            str(p)
            for p in (
                os.getpid(),
                stack.azurite.proc.pid if stack.azurite else None,
                stack.blob.proc.pid if stack.blob else None,
            )
            if p
        ),
    }
    if stack.azurite is not None:
        stack.env["SYNOSCD_STATE_STORE"] = stack.azurite.connection_string
    if stack.blob is not None:
        stack.env["SYNOSCD_SYNTH_BLOB_STORE"] = f"https://127.0.0.1:{stack.blob.blob_port}/{AZURITE_ACCOUNT}"


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write `export NAME=value` lines atomically, so a reader never sees half a file."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o600)  # it holds the local GitHub App key
    tmp.replace(path)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a file written by `write_env_file` (shell quoting, values may span lines)."""
    env: dict[str, str] = {}
    for token in shlex.split(path.read_text(encoding="utf-8"), comments=True, posix=True):
        if token == "export":
            continue
        name, _, value = token.partition("=")
        env[name] = value
    return env
