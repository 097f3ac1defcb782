"""Git plumbing: repo root, SHAs, files at another revision, and fetching a missing base ref."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlci.errors import ExternalError, RepoError


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RepoError(
            f"git {' '.join(args)} failed in {root}: {git_reason(proc.stderr)}",
            fix="check the repository state",
        )
    return proc


def toplevel(path: Path) -> Path:
    """The root of the git repository containing ``path``."""
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=path,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RepoError(
            f"{path} is not inside a git repository",
            fix="run mlci in a git repository (`git init`), or cd into one",
        )
    return Path(proc.stdout.strip())


def project_root(path: Path) -> Path:
    """The DVC project ``path`` is in: the nearest directory at or above ``path`` that holds
    ``dvc.yaml`` or ``.dvc/``, inside the git top level; the top level itself when none does.

    Every mlci command that works on a project (all but ``train`` and ``evaluate``, which DVC
    runs in their stage's directory) starts here, so a project in a sub-directory of a
    monorepo works from that directory or below it.
    """
    top = toplevel(path).resolve()
    here = path.resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").is_file() or (candidate / ".dvc").is_dir():
            return candidate
        if candidate == top or top not in candidate.parents:
            break
    return top


def git_dir(root: Path) -> Path:
    """The repository's git directory (``.git``, or a worktree's), which nothing committed
    can write into."""
    return Path(_git(root, "rev-parse", "--absolute-git-dir").stdout.strip())


def head_sha(root: Path) -> str:
    return _git(root, "rev-parse", "HEAD").stdout.strip()


def branch(root: Path) -> str | None:
    name = _git(root, "rev-parse", "--abbrev-ref", "HEAD", check=False).stdout.strip()
    return None if name in ("", "HEAD") else name


def commit_time(root: Path, rev: str) -> int:
    """Committer timestamp (epoch seconds) of ``rev``."""
    return int(_git(root, "show", "-s", "--format=%ct", rev).stdout.strip())


def is_dirty(root: Path) -> bool:
    return bool(_git(root, "status", "--porcelain", "--untracked-files=no").stdout.strip())


def untracked(root: Path, *pathspecs: str) -> list[str]:
    """Files git neither tracks nor ignores that match ``pathspecs``."""
    proc = _git(root, "ls-files", "--others", "--exclude-standard", "--", *pathspecs, check=False)
    return [line for line in proc.stdout.splitlines() if line.strip()]


def rev_sha(root: Path, rev: str) -> str | None:
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return proc.stdout.strip() or None


def show(root: Path, rev: str, path: str) -> bytes | None:
    """A file's bytes at ``rev``, or None when it does not exist there."""
    proc = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def prefix(root: Path) -> str:
    """``root``'s path inside its repository, '' or ending in '/' (for ``rev:path``)."""
    return _git(root, "rev-parse", "--show-prefix").stdout.strip()


def show_in(root: Path, rev: str, path: str) -> bytes | None:
    """A project file's bytes at ``rev``: ``path`` is relative to ``root`` (a project that may
    sit in a sub-directory), not to the top level that ``rev:path`` names."""
    return show(root, rev, f"{prefix(root)}{path}")


def ignored_by(root: Path, path: str) -> str | None:
    """The ``.gitignore`` rule that excludes ``path`` (relative to ``root``), as
    ``file:line: pattern``; None when git does not ignore it."""
    proc = _git(root, "check-ignore", "-v", "--", path, check=False)
    line = proc.stdout.strip()
    if proc.returncode != 0 or not line or "\t" not in line:
        return None
    source, line_no, pattern = line.split("\t", 1)[0].split(":", 2)
    if pattern.startswith("!"):
        return None  # a negation matched: the file is *not* ignored
    where = Path(source) if Path(source).is_absolute() else root / source
    try:
        source = str(where.resolve().relative_to(toplevel(root).resolve()))
    except ValueError:
        source = str(where)  # a global excludes file
    return f"{source}:{line_no}: {pattern}"


def is_shallow(root: Path) -> bool:
    return _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"


def remotes(root: Path) -> list[str]:
    return _git(root, "remote").stdout.split()


def resolve_base(root: Path, base: str) -> str:
    """The commit SHA of ``base``, fetching it (depth 1) when a CI checkout lacks it.

    ``actions/checkout`` makes a depth-1 clone of one ref: the base branch is not there, and
    ``git fetch origin main`` alone does not create ``origin/main``, so fetch with an explicit
    refspec.
    """
    for candidate in (base, f"origin/{base}"):
        sha = rev_sha(root, candidate)
        if sha:
            return sha
    if "origin" not in remotes(root):
        raise RepoError(
            f"base revision '{base}' not found and there is no 'origin' remote",
            fix="pass --base with an existing branch, tag or SHA",
        )
    refspec = f"+refs/heads/{base}:refs/remotes/origin/{base}"
    args = ("fetch", "--no-tags", "--depth=1", "origin", refspec)
    proc = _git(root, *args, check=False)
    if proc.returncode != 0:
        if "couldn't find remote ref" in proc.stderr or "not our ref" in proc.stderr:
            raise RepoError(
                f"base branch '{base}' does not exist on origin",
                fix="pass --base with the PR's real base branch",
            )
        raise ExternalError(
            f"`git {' '.join(args)}` failed (origin is {remote_url(root)}): "
            f"{git_reason(proc.stderr)}",
            fix=f"check that origin is reachable and readable from here and that branch "
            f"'{base}' exists on it, or pass --base with a revision already fetched "
            "(actions/checkout: fetch-depth: 0)",
        )
    sha = rev_sha(root, f"origin/{base}")
    if not sha:
        raise RepoError(
            f"base branch '{base}' not found after fetching",
            fix="pass --base with an existing branch",
        )
    return sha


def remote_url(root: Path, name: str = "origin") -> str:
    """A remote's URL without credentials."""
    url = _git(root, "remote", "get-url", name, check=False).stdout.strip()
    return _redact(url) or f"'{name}' (no URL)"


def git_reason(stderr: str) -> str:
    """Git's own first error line (``fatal:``/``error:``), not the advice after it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal:", "error:"):
            if line.lower().startswith(prefix):
                return _redact(line[len(prefix) :].strip())[:300]
    return _redact(lines[0])[:300] if lines else "no error message"


def _redact(text: str) -> str:
    """Drop ``user:password@`` from URLs in ``text``."""
    import re

    return re.sub(r"(?<=://)[^/@\s]+@", "", text)


def fetch_commit(root: Path, sha: str) -> bool:
    """Whether commit ``sha`` is here, fetching it alone (depth 1) from origin if not."""
    if rev_sha(root, sha):
        return True
    if "origin" not in remotes(root):
        return False
    _git(root, "fetch", "--no-tags", "--depth=1", "origin", sha, check=False)
    return rev_sha(root, sha) is not None


def first_parent(root: Path, rev: str = "HEAD") -> str | None:
    """The first parent of ``rev`` (the branch tip before a merge), fetched where a shallow CI
    checkout lacks it; None for a root commit or where it cannot be had. Read from the commit
    object itself: a shallow clone hides the parents from ``rev^``, not from ``cat-file``."""
    proc = _git(root, "cat-file", "commit", rev, check=False)
    if proc.returncode != 0:
        return None
    for line in proc.stdout.splitlines():
        if not line:
            break  # the headers end; a root commit has no parent line
        if line.startswith("parent "):
            sha = line.removeprefix("parent ").strip()
            return sha if fetch_commit(root, sha) else None
    return None


_REF_FORBIDDEN = set(" ~^:?*[\\\x7f")


def branch_problem(name: str) -> str | None:
    """Why ``name`` is not a branch name mlci may push to, or None.

    git's own rules for ``refs/heads/<name>`` (``git check-ref-format``): no ``..``, ``@{``,
    control characters, space or ``~^:?*[\\``; no component that starts with ``.`` or ends
    with ``.lock``; no leading, trailing or doubled ``/``; no trailing ``.``; not ``@``. And
    none that only looks like a branch: ``HEAD``, ``refs/...``, or a leading ``-`` (an option).
    """
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it starts with '-'"
    if name == "HEAD" or name == "@" or name.startswith("refs/"):
        return f"{name!r} names a ref, not a branch"
    bad = sorted({c for c in name if c in _REF_FORBIDDEN or ord(c) < 0x20})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}"
    if ".." in name or "@{" in name:
        return "it contains '..' or '@{'"
    if name.startswith("/") or name.endswith(("/", ".")) or "//" in name:
        return "it starts or ends with '/', ends with '.', or has '//'"
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return f"its part {part!r} starts with '.' or ends with '.lock'"
    return None
