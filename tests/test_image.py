"""The runner image (docker/Dockerfile), built and run for real with Podman.

No container registry is reachable from CI, so the session builds its base from Debian
packages (``debootstrap --variant=minbase bookworm`` from the mirror apt uses, imported as an
image) and builds the runner image on it once, with ``BASE`` pointing there: the Dockerfile's
path for a base without Python. In it, ``mlci doctor`` reports the pinned versions and is the
health check; two demos in two fresh containers train byte-identical models and metrics; and
a PR check in one of them posts its report to the loopback GitHub on the host (``--network
host``). ``.ci/run`` installs podman, runc and debootstrap; the tests skip, saying so, where
they are missing or the user is not root. Podman runs with ``runc``, explicit ulimits and the
host's network (see STACK-NOTES, "Containers"); the CA bundle reaches pip as a build secret.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from github_server import FakeGitHub

# Building the image downloads and installs about 1 GB of wheels: minutes, more on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = ("podman", "runc", "debootstrap")
RUN = ("--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
HOST = ("--network", "host")
UID = 1001  # the image's user (docker/Dockerfile's UID)
MARKER = "<!-- mlci-report:mlci -->"
TRAINED = ("metrics.json", "models/model.pkl")  # what `mlci demo` trains, in both checkouts


def pins() -> dict[str, str]:
    """docker/constraints.txt as ``{name: version}``."""
    found: dict[str, str] = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[name.strip()] = version.strip()
    return found


# ---- the files alone (no podman) ---------------------------------------------------------------


def test_constraints_pin_every_runtime_dependency_and_no_torch() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned = pins()
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = project.split("dependencies = [", 1)[1].split("]\n", 1)[0]
    for line in re.findall(r'^\s*"([^"]+)",', block, re.M):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{name} is not pinned in {CONSTRAINTS.name}"
        assert req.specifier.contains(pinned[name], prereleases=True), (line, pinned[name])
    assert "torch" not in pinned and not any(n.startswith("nvidia-cu") for n in pinned)


def test_the_dockerfile_takes_a_base_runs_as_a_user_and_checks_its_health_with_doctor() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE=python:3\.11-slim$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert re.search(r'^HEALTHCHECK .*CMD \["mlci", "doctor"\]$', text, re.M)
    (user,) = re.findall(r"^USER (\S+)$", text, re.M)
    assert user not in ("root", "0")
    assert "--mount=type=secret,id=ca" in text and "PIP_CERT" not in text.split("ENV ", 1)[1]


def test_the_arc_values_and_the_job_pod_template_agree() -> None:
    values = yaml.safe_load((ROOT / "docker" / "arc-values.yaml").read_text(encoding="utf-8"))
    (config_map,) = yaml.safe_load_all(
        (ROOT / "docker" / "arc-gpu-job.yaml").read_text(encoding="utf-8")
    )
    assert values["containerMode"]["type"] == "kubernetes"
    (runner,) = values["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in runner["env"]}
    mount = next(m for m in runner["volumeMounts"] if m["name"] == "job-template")
    (volume,) = [v for v in values["template"]["spec"]["volumes"] if v["name"] == "job-template"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (key,) = config_map["data"]
    assert env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"] == f"{mount['mountPath']}/{key}"
    job = yaml.safe_load(config_map["data"][key])
    (container,) = job["spec"]["containers"]
    assert container["name"] == "$job"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_the_example_workflow_is_valid_pinned_and_zizmor_clean() -> None:
    files = sorted(str(p) for p in (ROOT / "examples" / "workflows").glob("*.yml"))
    assert files
    for cmd in (
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
        ["zizmor", "--offline", "--no-progress", "--min-severity", "low", *files],
    ):
        exe = shutil.which(cmd[0], path=str(Path(sys.executable).parent)) or shutil.which(cmd[0])
        assert exe, f"{cmd[0]} is not installed: it is a test dependency"
        proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in files:
        job = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["jobs"]["train"]
        assert "@sha256:" in job["container"]["image"]
        for step in job["steps"]:
            ref = step.get("uses", "./")
            assert ref.startswith("./") or re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref)


# ---- the image, built once per session ------------------------------------------------------


def _require_podman() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (Debian packages podman, runc, debootstrap; "
            ".ci/run installs them as root)"
        )
    if os.geteuid() != 0:
        pytest.skip("building the image from a debootstrap base needs root (podman as root)")


def apt_mirror() -> str:
    """The Debian mirror apt is configured with (deb822 or one-line sources)."""
    sources = Path("/etc/apt")
    for path in sorted((sources / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text(encoding="utf-8").split("\n\n"):
            fields = dict(
                (k.strip(), v.strip())
                for k, _, v in (ln.partition(":") for ln in stanza.splitlines())
                if not k.startswith((" ", "#"))
            )
            if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    listed = sources / "sources.list"
    text = listed.read_text(encoding="utf-8") if listed.exists() else ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and parts[-2] == "bookworm":
            return parts[-3]
    return "http://deb.debian.org/debian"


def podman(*args: str, stdin: IO[bytes] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], stdin=stdin, capture_output=True, text=True, check=False, timeout=1200
    )


def _ok(proc: subprocess.CompletedProcess[str], what: str) -> str:
    assert proc.returncode == 0, (
        f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


@dataclass(frozen=True)
class Image:
    ref: str
    id: str


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    """The runner image, built on a debootstrap Debian base; both removed at the end."""
    _require_podman()
    tag = f"test-{os.getpid()}"
    base, ref = f"localhost/mlci-test-debian:{tag}", f"localhost/mlci-runner:{tag}"
    rootfs = tmp_path_factory.mktemp("debootstrap") / "bookworm"
    proc = subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), apt_mirror()],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    _ok(proc, "debootstrap")
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / cache).glob("*"):
            if entry.is_file():
                entry.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = podman("import", "-", base, stdin=tar.stdout)
    assert tar.wait() == 0, "tar of the debootstrap root failed"
    _ok(imported, "podman import")
    shutil.rmtree(rootfs)
    # the proxy's CA bundle reaches pip as a build secret, never as a layer
    secret = ("--secret", f"id=ca,src={CA_BUNDLE}") if CA_BUNDLE.is_file() else ()
    try:
        build = podman(
            "build", *RUN, *HOST, "--format", "docker", *secret,  # docker: keeps HEALTHCHECK
            "--build-arg", f"BASE={base}", "--build-arg", f"MLCI_IMAGE={ref}",
            "-f", str(DOCKERFILE), "-t", ref, str(ROOT),
        )  # fmt: skip
        _ok(build, "podman build")
        image_id = _ok(podman("image", "inspect", "--format", "{{.Id}}", ref), "inspect").strip()
        yield Image(ref, image_id)
    finally:
        podman("rmi", "-f", ref, base)


def run_in(
    img: Image,
    *command: str,
    mounts: dict[Path, str] | None = None,
    env: dict[str, str] | None = None,
) -> list[str]:
    """``podman run`` arguments for a fresh, removed container of ``img``."""
    extra = [a for host, at in (mounts or {}).items() for a in ("-v", f"{host}:{at}")]
    extra += [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    return ["podman", "run", "--rm", "--no-healthcheck", *RUN, *HOST, *extra, img.ref, *command]


def inspect(img: Image, field: str) -> Any:
    """One field of ``podman image inspect``, parsed."""
    found = podman("image", "inspect", "--format", f"{{{{json .{field}}}}}", img.ref)
    return json.loads(_ok(found, "podman image inspect"))


def test_doctor_in_the_image_reports_the_pinned_versions_and_is_its_health_check(
    image: Image,
) -> None:
    proc = subprocess.run(run_in(image, "mlci", "doctor"), capture_output=True, text=True)
    rows: dict[str, str] = {}  # the first row of a name: `dvc` is a version, then a repository
    for line in _ok(proc, "mlci doctor").splitlines():
        name, _, value = line.strip().partition("  ")
        rows.setdefault(name, value.strip())
    pinned = pins()
    for pkg in ("dvc", "mlflow", "pandera", "scikit-learn", "nvidia-ml-py"):
        assert rows[pkg] == pinned[pkg], (pkg, rows)
    assert rows["python"].startswith("3.11.") and rows["torch"] == "not installed"

    config = inspect(image, "Config")
    assert config["User"] == str(UID)
    assert not [e for e in config["Env"] if e.startswith(("PIP_CERT=", "REQUESTS_CA_BUNDLE="))]
    assert inspect(image, "HealthCheck")["Test"] == ["CMD", "mlci", "doctor"]
    started = podman(
        "run", "-d", "--health-interval", "disable", *RUN, *HOST, image.ref, "sleep", "120"
    )
    container = _ok(started, "podman run -d").strip()
    try:
        check = podman("healthcheck", "run", container)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        podman("rm", "-f", "-t", "0", container)


def test_the_build_secret_and_torch_stay_out_of_the_image(image: Image) -> None:
    script = (
        "test ! -e /run/secrets/ca && ! pip config list | grep -qi cert"
        " && ! python -c 'import torch' 2>/dev/null && id -u"
    )
    proc = subprocess.run(run_in(image, "sh", "-c", script), capture_output=True, text=True)
    assert _ok(proc, "secret check").strip() == str(UID)
    size = int(inspect(image, "Size"))
    assert size < 2_000_000_000, f"{size / 1e9:.2f} GB: a CUDA build of torch got in?"


def test_the_runtime_a_training_records_in_the_image_names_the_image(image: Image) -> None:
    code = "import json; from mlci.training.facts import runtime; print(json.dumps(runtime()))"
    cmd = run_in(image, "python", "-c", code, env={"MLCI_IMAGE_DIGEST": image.id})
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = json.loads(_ok(proc, "runtime"))
    assert found["image"] == image.ref and found["image digest"] == image.id
    assert found["os"].startswith("Debian GNU/Linux 12") and found["mlci"]


@dataclass(frozen=True)
class Demo:
    out: Path
    returncode: int
    log: str


@pytest.fixture(scope="module")
def demos(
    image: Image, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Demo, Demo, FakeGitHub]]:
    """``mlci demo`` in two fresh containers at once. The first runs as a pull request's job
    would: its check posts to the loopback GitHub on the host."""
    github = FakeGitHub().start()
    outs = [tmp_path_factory.mktemp(f"demo-{n}") for n in ("a", "b")]
    event = {"number": 7, "pull_request": {"number": 7}}
    (outs[0] / "event.json").write_text(json.dumps(event), encoding="utf-8")
    job = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": "/out/event.json",
        "GITHUB_REPOSITORY": github.repo,
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": github.token,
    }
    procs = []
    for out, env in zip(outs, (job, {}), strict=True):
        os.chown(out, UID, UID)
        cmd = run_in(image, "mlci", "demo", "--dir", "/out/demo", mounts={out: "/out"}, env=env)
        procs.append(
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    try:
        logs = [p.communicate(timeout=1200)[0] for p in procs]
        a, b = (Demo(o, p.returncode, log) for o, p, log in zip(outs, procs, logs, strict=True))
        yield a, b, github
    finally:
        for p in procs:
            p.kill()
        github.stop()


def test_mlci_demo_exits_0_and_two_fresh_containers_train_byte_identical_files(
    demos: tuple[Demo, Demo, FakeGitHub],
) -> None:
    a, b, _ = demos
    assert a.returncode == 0, a.log[-3000:]
    assert b.returncode == 0, b.log[-3000:]
    for checkout in ("project", "ci-checkout"):
        for name in TRAINED:
            first, second = (d.out / "demo" / checkout / name for d in (a, b))
            assert first.read_bytes() == second.read_bytes(), f"{checkout}/{name} differs"


def test_a_pr_check_in_the_container_posts_its_report_to_github_on_the_host(
    demos: tuple[Demo, Demo, FakeGitHub],
) -> None:
    a, _, github = demos
    assert a.returncode == 0, a.log[-3000:]
    (comment,) = [c for c in github.comments[7] if MARKER in c["body"]]
    assert "passed" in comment["body"] and "max_depth" in comment["body"]
    assert "another stack" not in comment["body"]  # base and PR trained in this one image
    leaked = [ln for ln in a.log.splitlines() if github.token in ln]
    assert set(leaked) == {f"::add-mask::{github.token}"}, leaked  # GitHub masks it in logs
