"""Shadow evaluation and the release guard of a monitor window.

With a ``challenger`` registered (``mlci.release.strategy: challenger``), each window scores it
beside the champion: the same rows, the same metrics, the latency measured batch by batch in
turn so machine noise hits both alike. The challenger passes a window when, under the gates, it
is no worse than the champion on that window; the ledger (``registry.ledger``) keeps one entry
per window, and after ``release.probation`` passes in a row it is ready for ``mlci release``.

The guard (``monitor.on_breach: rollback``): a champion that fails a gate within its
probation after it took over is moved back to ``previous`` with the evidence, never twice in
a row without a person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlci.ci import CIContext
from mlci.errors import MlciError
from mlci.monitor.result import Latency, MonitorResult, Status
from mlci.registry import ledger
from mlci.settings.config import Settings
from mlci.verdict.metrics import Comparison, compare

AUTOMATIC = "automatic rollback"


@dataclass
class Shadow:
    version: str
    against: str  # the champion's version
    metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    comparison: Comparison | None = None
    latency: Latency | None = None
    passed: bool = False
    streak: int = 0
    probation: int = 3
    windows: int = 0
    champion_latency: Latency | None = None

    @property
    def ready(self) -> bool:
        return self.streak >= self.probation


def window_key(frame: Any) -> str:
    """The snapshot's digest (its rows' content): a window counts once, whoever judges it."""
    import pandas as pd

    values = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return hashlib.sha256(values + ",".join(map(str, frame.columns)).encode()).hexdigest()[:16]


def window(
    settings: Settings,
    result: MonitorResult,
    snap: Any,
    labels: Any | None,
    head: dict[str, float],
    task: str,
    champion: tuple[Any, Any, Any],
    inputs_for: Callable[[Any], Any],
    guarded: bool = False,
) -> None:
    """Record the champion's window (``guarded``: only the release guard reads them); with a
    challenger, judge it on the same rows. A challenger that cannot be judged is said in a
    note: the champion's monitoring never depends on it."""
    from mlci.monitor import scoring
    from mlci.registry import models as registry
    from mlci.registry import tags as vocab
    from mlci.registry.tracking import mlflow_client
    from mlci.training.base import get_trainer

    champ = result.champion
    assert champ is not None
    client = mlflow_client(settings.tracking_uri)
    key = window_key(snap)
    if guarded:
        result.served = note_champion_window(client, result, key)
    mv = registry.alias_version(settings.tracking_uri, champ.name, registry.CHALLENGER)
    if mv is None or str(mv.version) == champ.version:
        return
    model, trainer, x = champion
    try:
        backend = vocab.backend(mv.tags) or "sklearn"
        c_model = scoring.load_model(settings, champ.name, backend, registry.CHALLENGER)
        c_trainer = get_trainer(backend)
        cx = inputs_for(c_model)
        found: dict[str, float] = {}
        if labels is not None:
            mask = labels.notna().to_numpy()
            c_task = vocab.task(mv.tags) or task
            found = scoring.score(c_trainer, c_model, cx[mask], labels[mask], c_task)
        gate = settings.monitor.latency
        pair = scoring.interleaved(
            (trainer, c_trainer), (model, c_model), (x, cx), gate.batch_rows, gate.batches
        )
    except MlciError:
        raise
    except Exception as exc:
        result.notes.append(
            f"challenger v{mv.version} not judged: {type(exc).__name__}: {exc}"[:300]
        )
        return
    result.shadow = judge(settings, result, str(mv.version), head, found, pair[1], key, client)
    result.shadow.champion_latency = pair[0]


def judge(
    settings: Settings,
    result: MonitorResult,
    version: str,
    head: dict[str, float],
    challenger: dict[str, float],
    latency: Latency | None,
    key: str,
    client: Any,
) -> Shadow:
    """The challenger's window against the champion's on the same rows, recorded once."""
    champ = result.champion
    assert champ is not None
    gates = settings.monitor.gates if settings.monitor.gates is not None else settings.gates
    comparison = compare(
        head, challenger, gates, base_rev=f"champion v{champ.version} on this window"
    )
    passed = comparison.passed and bool(head)
    window = ledger.Window(
        key=key,
        at=result.at,
        role=ledger.CHALLENGER,
        passed=passed,
        against=champ.version,
        metrics=challenger,
        champion_metrics=head,
        failed=tuple(m.name for m in comparison.failed),
    )
    ledger.record(client, champ.name, version, window)
    windows = ledger.read(client.get_model_version(champ.name, version).tags, ledger.CHALLENGER)
    probation = settings.release.probation
    shadow = Shadow(version, champ.version, challenger, head, comparison, latency, passed)
    shadow.streak, shadow.probation, shadow.windows = (
        ledger.streak(windows),
        probation,
        len(windows),
    )
    return shadow


def _instant(text: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def note_champion_window(client: Any, result: MonitorResult, key: str) -> int:
    """Record the champion's own window; how many windows it has served since it last took
    over (the trail's last move of ``champion`` to it)."""
    from mlci.registry import history

    champ = result.champion
    assert champ is not None
    failed = result.comparison.failed if result.comparison is not None else ()
    window = ledger.Window(
        key=key,
        at=result.at,
        role=ledger.CHAMPION,
        passed=not failed and not result.latency_breaches,
        failed=tuple(m.name for m in failed),
    )
    ledger.record(client, champ.name, champ.version, window)
    tags = client.get_model_version(champ.name, champ.version).tags
    moves = history.read(client.get_registered_model(champ.name).tags)
    took_over = [m.at for m in moves if m.alias == "champion" and m.after == champ.version]
    since = _instant(took_over[-1]) - 1.0 if took_over else 0.0  # result.at has seconds only
    return sum(1 for w in ledger.read(tags, ledger.CHAMPION) if _instant(w.at) >= since)


def guard(settings: Settings, result: MonitorResult, ctx: CIContext, served: int) -> None:
    """``monitor.on_breach: rollback``: roll a champion that failed a gate back to ``previous``
    when it is still in probation (``served`` windows) and the last move was not already an
    automatic rollback; otherwise say why not (the issue and retraining go on as usual)."""
    from mlci.registry import history
    from mlci.registry import models as registry
    from mlci.registry.tracking import mlflow_client

    champ = result.champion
    failed = result.comparison is not None and bool(result.comparison.failed)
    if (
        champ is None
        or result.status is not Status.DEGRADED
        or not (failed or result.latency_breaches)
    ):
        return
    probation = settings.release.probation
    if served > probation:
        result.notes.append(
            f"no automatic rollback: v{champ.version} has served {served} windows, beyond its "
            f"probation of {probation}"
        )
        return
    client = mlflow_client(settings.tracking_uri)
    moves = [m for m in history.read(client.get_registered_model(champ.name).tags)]
    last = next((m for m in reversed(moves) if m.alias == registry.CHAMPION), None)
    if last is not None and last.why.startswith(AUTOMATIC):
        result.notes.append(
            "no automatic rollback: the champion's last move was one already; a person "
            "decides the next (`mlci rollback`)"
        )
        return
    reason = f"v{champ.version} failed in window {served} of {probation}: {result.summary}"
    try:
        done = registry.rollback(
            settings.tracking_uri,
            champ.name,
            reason[:900],
            actor=f"mlci monitor ({ctx.actor})" if ctx.actor else "mlci monitor",
            run_url=ctx.run_url,
            automatic=True,
        )
    except MlciError as exc:
        result.notes.append(f"automatic rollback failed: {exc.one_line()}")
        return
    result.rolled_back = (done.before, done.after)
