"""What a live check is, what it returns, and what it may use.

A `Check` is planned from the plan and its profiles (see `installer.checks.planner`): a stable
kebab-case id (``tcp-connect``), a target (``api.machinemetrics.com:443``), the checks it
needs first, and an async function that looks at the network. The runner
(`installer.checks.runner`) runs them all concurrently and turns every outcome, timeout or
bug into a `Result`; a check function never has to catch its own surprises.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from installer.planning.plan import Plan
from installer.vendors.profiles import Catalog, Endpoint

STATUSES = ("pass", "warn", "fail", "skip")
# Statuses a dependent check accepts from its prerequisite: a NATS server that answers
# oddly (warn) still has a reachable port.
USABLE = ("pass", "warn")

DEFAULT_TIMEOUT_S = 3.0

# The diagnosis of a conditional follow-up probe that found nothing to look into (no failure
# called for it): the runner leaves such a result out of the report.
NOT_NEEDED = "not-needed"


@dataclass(frozen=True)
class Outcome:
    """What a check function found: status, a diagnosis code, and the evidence in words.

    `facts` carries data for dependent checks (resolved addresses, the peer certificate);
    it is never shown or serialised. `remediation` overrides the profile's text for the
    diagnosis when a check knows better (e.g. names the issuer to exempt).
    """

    status: str
    diagnosis: str
    evidence: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    remediation: str | None = None


@dataclass(frozen=True)
class Result:
    """One check's verdict, as the report, the JSON and the wizard show it."""

    id: str
    kind: str
    target: str
    status: str
    diagnosis: str
    evidence: str
    remediation: str
    duration_s: float
    profile: str | None
    key: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The SPEC's stable JSON shape for one check."""
        return {"id": self.id, "kind": self.kind, "target": self.target, "status": self.status,
                "diagnosis": self.diagnosis, "evidence": self.evidence, "remediation": self.remediation,
                "duration_s": round(self.duration_s, 3), "profile": self.profile}


@dataclass(frozen=True)
class Proxy:
    """The plan's proxy, ready to use: where to connect and what to say."""

    host: str
    port: int
    authorization: str | None  # the value of a Proxy-Authorization header, or None
    url_redacted: str


@dataclass
class Context:
    """Everything a check may use. Built once per run by the planner."""

    plan: Plan
    catalog: Catalog
    timeout: float = DEFAULT_TIMEOUT_S
    resolvers: tuple[str, ...] = ()
    proxy: Proxy | None = None
    extra_ca_file: str | None = None
    sys_class_net: str = "/sys/class/net"
    proc_sys: str = "/proc/sys"
    _trust: ssl.SSLContext | None = None

    def trust(self) -> ssl.SSLContext:
        """A verifying client context: the system store plus the plan's extra CA file."""
        if self._trust is None:
            ctx = ssl.create_default_context()
            if self.extra_ca_file:
                ctx.load_verify_locations(cafile=self.extra_ca_file)
            self._trust = ctx
        return self._trust


CheckFn = Callable[[Context, Mapping[str, Result]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Check:
    """One planned check.

    `needs` lists groups of prerequisite keys: every group must have at least one member
    whose status is usable (pass or warn), else this check is skipped with that cause. `after`
    lists keys to wait for whatever their status (a follow-up probe that looks into their
    failures). The function receives the results of all of them by key.
    """

    id: str
    kind: str
    target: str
    run: CheckFn
    profile: str | None = None
    needs: tuple[tuple[str, ...], ...] = ()
    after: tuple[str, ...] = ()
    endpoint: Endpoint | None = None
    timeout_diagnosis: str = "timeout"  # what running out of time means for this check

    @property
    def key(self) -> str:
        """Unique within a run: the id and the target."""
        return f"{self.id}:{self.target}"
