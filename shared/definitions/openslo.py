"""OpenSLO v1 → slawatch documents, with a report of every field not carried over.

=========================  ==========================================================
OpenSLO v1                 slawatch
=========================  ==========================================================
Service                    Service (displayName → metadata.description)
SLO                        Agreement (type SLA, no parties), one objective per entry
                           of ``spec.objectives``
SLI ratioMetric            ratio objective, good = ``outcome: good``
SLI thresholdMetric        ratio objective, good = ``value: "<op> <value>"``
timeWindow rolling         ``window: <duration>`` (1M/1Q/1Y → 30d/90d/365d, noted)
timeWindow calendar        ``window: week | month | quarter`` + ``timezone``
budgetingMethod            Occurrences (Timeslices / RatioTimeslices: noted, counted as
                           occurrences)
AlertPolicy + burnrate     ``alerting: {policy: burn-rate, burnRates: [...]}``: factor
AlertCondition             = threshold, long = lookbackWindow, short = 1/12 of it
AlertNotificationTarget    Receiver: URL → webhook; slack / teams / pagerduty → that
                           type, its secret referenced as
                           ``env:SLAWATCH_SECRET_OPENSLO_<NAME>_…``;
                           a Slack / Teams webhook URL → that type with ``env:…_URL``
                           (noted); a URL with a credential in it is not converted
                           (noted): never copied into the definitions history
=========================  ==========================================================

slawatch evaluates events, not metric queries: every ``metricSource`` is reported
(its query shows what events to send), and the objective selects events of the SLO's
service with ``type`` = ``event_type`` (default ``request``) that carry ``outcome``
(ratio) or ``value`` (threshold). Fields that have no slawatch equivalent are listed
in :attr:`Conversion.notes` by file, document and path; nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.definitions import yamlsafe
from shared.definitions.kinds.secrets import RECEIVER_TYPE, url_credentials, webhook_service
from shared.definitions.load import (
    DefinitionError,
    DefinitionsInvalid,
    Located,
    check_set,
    parse_document,
    yaml_files,
)
from shared.timeutil import format_duration, parse_duration_ms

OPENSLO = "openslo/v1"
KINDS = ("Service", "SLI", "SLO", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
_OPS = {"lte": "<=", "gte": ">=", "lt": "<", "gt": ">"}
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|M|Q|Y)$")
_APPROX = {"M": ("d", 30), "Q": ("d", 90), "Y": ("d", 365)}
_CALENDAR = {"1w": "week", "1M": "month", "1Q": "quarter"}
_FOLDED = "folded into the objectives that use it; its name and display name are not kept"
_PAGE_WORDS = ("page", "critical", "crit", "high", "urgent", "p1", "sev1", "emergency")


@dataclass(frozen=True)
class Note:
    """A field not carried over (or carried over approximately), and why."""

    file: str
    index: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}[{self.index}]"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass
class Conversion:
    documents: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    errors: list[DefinitionError] = field(default_factory=list)

    def yaml(self) -> str:
        return yaml.dump_all(self.documents, Dumper=_NoAliases, sort_keys=False)


class _NoAliases(yaml.SafeDumper):
    """Writes shared objects out in full: no ``&id001`` anchors in generated files."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class _Doc:
    """One OpenSLO document; remembers which fields were used or noted."""

    def __init__(self, raw: dict[str, Any], file: str, index: int) -> None:
        self.raw, self.file, self.index = raw, file, index
        self.used: set[str] = set()
        self.notes: list[Note] = []

    @property
    def kind(self) -> str:
        return str(self.raw.get("kind"))

    @property
    def name(self) -> str:
        return str(self.get("metadata.name") or "")

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.raw
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
            if part.startswith("["):
                i = int(part[1:-1])
                node = node[i] if isinstance(node, list) and i < len(node) else None
            else:
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return default
        self.used.add(path)
        return node

    def raw_at(self, path: str) -> Any:
        """The value at ``path`` without marking it used."""
        used = set(self.used)
        value = self.get(path)
        self.used = used
        return value

    def note(self, path: str, message: str) -> None:
        self.used.add(path)
        self.notes.append(Note(self.file, self.index, path, message))

    def leftovers(self) -> list[Note]:
        """Every leaf field neither used nor noted."""
        out: list[Note] = []

        def covered(path: str) -> bool:
            return any(path == u or path.startswith((u + ".", u + "[")) for u in self.used)

        def walk(node: Any, path: str) -> None:
            if covered(path):
                return
            if isinstance(node, dict) and node:
                for key, value in node.items():
                    walk(value, f"{path}.{key}" if path else str(key))
            elif isinstance(node, list) and node:
                for i, value in enumerate(node):
                    walk(value, f"{path}[{i}]")
            else:
                out.append(
                    Note(self.file, self.index, path, "not carried over: no slawatch equivalent")
                )

        walk(self.raw, "")
        return out


def _query(metric: object) -> str:
    """`` (query: …)`` of a metric, to show what the events must carry."""
    source = metric.get("metricSource") if isinstance(metric, dict) else None
    spec = source.get("spec") if isinstance(source, dict) else None
    query = spec.get("query") if isinstance(spec, dict) else None
    if not isinstance(query, str):
        return ""
    return f" (query: {query[:157] + '...' if len(query) > 160 else query})"


def _slug(text: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-")
    return slug or fallback


def _labels(doc: _Doc, path: str) -> dict[str, str]:
    raw = doc.get(path)
    if not isinstance(raw, dict):
        return {}
    labels: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, list):
            labels[str(key)] = ",".join(str(v) for v in value)
            doc.note(f"{path}.{key}", "a list of label values became one comma-separated value")
        else:
            labels[str(key)] = str(value)
    return labels


def _name(text: str) -> str:
    """An OpenSLO name (``OnCallDevops_Mail``) as a slawatch name (``oncalldevops-mail``)."""
    return _slug(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text), "unnamed")


def _metadata(doc: _Doc) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": _name(doc.name)}
    if metadata["name"] != doc.name:
        doc.note(
            "metadata.name", f"renamed to {metadata['name']!r} (slawatch names are kebab-case)"
        )
    labels = _labels(doc, "metadata.labels")
    if labels:
        metadata["labels"] = labels
    display = doc.get("metadata.displayName")
    if display:
        metadata["description"] = str(display)
    if doc.raw.get("metadata", {}).get("annotations"):
        doc.note("metadata.annotations", "annotations are not kept (slawatch has labels only)")
    return metadata


def _duration(doc: _Doc, path: str, text: object) -> str | None:
    """OpenSLO duration shorthand → slawatch duration (months, quarters, years
    approximated in days, noted)."""
    match = _DURATION.match(str(text).strip())
    if match is None:
        doc.note(path, f"invalid duration {text!r}")
        return None
    amount, unit = int(match.group(1)), match.group(2)
    if unit in _APPROX:
        new_unit, days = _APPROX[unit]
        result = f"{amount * days}{new_unit}"
        doc.note(path, f"rolling {text} approximated as {result}")
        return result
    return f"{amount}{unit}"


def _window(doc: _Doc, slo_path: str) -> tuple[dict[str, str], bool] | None:
    """``window`` (+ ``timezone``) of an objective, and whether it is a calendar window."""
    windows = doc.get(f"{slo_path}.timeWindow")
    if not isinstance(windows, list) or not windows:
        doc.note(f"{slo_path}.timeWindow", "missing: a window is needed")
        return None
    for extra in range(1, len(windows)):
        doc.note(f"{slo_path}.timeWindow[{extra}]", "only the first time window is used")
    base = f"{slo_path}.timeWindow[0]"
    duration = doc.get(f"{base}.duration")
    has_calendar = isinstance(doc.raw_at(f"{base}.calendar"), dict)
    rolling = doc.get(f"{base}.isRolling", not has_calendar)
    if not rolling:
        spelled = str(duration)
        calendar = _CALENDAR.get(spelled)
        timezone = doc.get(f"{base}.calendar.timeZone", "UTC")
        if doc.get(f"{base}.calendar.startTime") is not None:
            doc.note(
                f"{base}.calendar.startTime",
                "calendar windows align to week / month / quarter boundaries in the time zone; "
                "the start time is not used",
            )
        if calendar is not None:
            return {"window": calendar, "timezone": str(timezone)}, True
        doc.note(
            f"{base}.duration",
            f"calendar window {spelled} is not supported (only 1w, 1M, 1Q); used a rolling window",
        )
    window = _duration(doc, f"{base}.duration", duration)
    return ({"window": window}, False) if window else None


def _burn_rate_rule(cond: _Doc, base: str) -> dict[str, Any] | None:
    kind = cond.get(f"{base}.condition.kind")
    if kind != "burnrate":
        cond.note(f"{base}.condition.kind", f"condition kind {kind!r} is not supported")
        return None
    op = cond.get(f"{base}.condition.op", "gte")
    if op not in ("gte", "gt"):
        cond.note(f"{base}.condition.op", f"op {op!r}: a burn-rate alert fires at or above")
        return None
    if op == "gt":
        cond.note(f"{base}.condition.op", "'gt' treated as 'gte' (fires at the threshold)")
    threshold = cond.get(f"{base}.condition.threshold")
    lookback = cond.get(f"{base}.condition.lookbackWindow")
    if not isinstance(threshold, int | float) or threshold <= 0 or lookback is None:
        cond.note(
            f"{base}.condition", "a burnrate condition needs threshold > 0 and lookbackWindow"
        )
        return None
    long = _duration(cond, f"{base}.condition.lookbackWindow", lookback)
    if long is None:
        return None
    long_ms = parse_duration_ms(long)
    short = format_duration(max(long_ms // 12, 1000) // 1000 * 1000)
    cond.note(
        f"{base}.condition.lookbackWindow",
        f"long window {long}; slawatch adds a short window of 1/12 ({short}) that must "
        "burn too, so alerts stop soon after the burn stops",
    )
    if cond.get(f"{base}.condition.alertAfter") is not None:
        cond.note(
            f"{base}.condition.alertAfter",
            "not carried over: the short window plays that role (no extra delay)",
        )
    severity = str(cond.get(f"{base}.severity", "page"))
    mapped = "page" if severity.lower() in _PAGE_WORDS else "ticket"
    if mapped != severity:
        cond.note(f"{base}.severity", f"severity {severity!r} mapped to {mapped!r}")
    return {"severity": mapped, "factor": float(threshold), "long": long, "short": short}


def _receiver(target: _Doc, base: str, name: str) -> dict[str, Any] | None:
    text = str(target.get(f"{base}.target", ""))
    env = "SLAWATCH_SECRET_OPENSLO_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
    spec: dict[str, Any]
    is_url = re.match(r"^https?://", text) is not None
    service = webhook_service(text) if is_url else None
    found = url_credentials(text) if is_url else None
    if service is not None:
        # the URL is the credential: referenced, never copied into the history
        spec = {"type": RECEIVER_TYPE[service], "url": f"env:{env}_URL"}
        target.note(
            f"{base}.target",
            f"{service} webhook URL, a credential: not copied into the definition; set "
            f"${env}_URL in the notifier's environment to this target's URL",
        )
    elif found is not None:
        target.note(
            f"{base}.target",
            f"not converted: {found} of the target URL is a credential and definitions keep "
            f"every version; add a Receiver named {name!r} of type webhook with the URL "
            "without it and the credential in secretHeaders (an env:/file: reference)",
        )
        return None
    elif is_url:
        spec = {"type": "webhook", "url": text}
    elif "slack" in text.lower():
        spec = {"type": "slack", "url": f"env:{env}_URL"}
        target.note(f"{base}.target", f"Slack webhook URL read from ${env}_URL")
    elif "teams" in text.lower():
        spec = {"type": "teams", "url": f"env:{env}_URL"}
        target.note(f"{base}.target", f"Teams webhook URL read from ${env}_URL")
    elif "pagerduty" in text.lower():
        spec = {"type": "pagerduty", "routingKey": f"env:{env}_ROUTING_KEY"}
        target.note(f"{base}.target", f"PagerDuty routing key read from ${env}_ROUTING_KEY")
    else:
        target.note(
            f"{base}.target",
            f"target {text!r} has no slawatch receiver type; add a Receiver named {name!r}",
        )
        return None
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Receiver",
        "metadata": {"name": name},
        "spec": spec,
    }


class _Converter:
    def __init__(self, docs: list[_Doc], event_type: str, agreement_type: str) -> None:
        self.docs = docs
        self.event_type = event_type
        self.agreement_type = agreement_type
        self.by_kind: dict[str, dict[str, _Doc]] = {}
        for doc in docs:
            self.by_kind.setdefault(doc.kind, {})[doc.name] = doc
        self.out: list[tuple[dict[str, Any], _Doc]] = []
        self.receivers: dict[str, str | None] = {}  # target name → receiver name
        self.used_slis: set[str] = set()

    def run(self) -> None:
        for doc in self.docs:
            doc.get("apiVersion")
            doc.get("kind")
            doc.get("metadata.name")
        for doc in self.by_kind.get("Service", {}).values():
            self.service(doc)
        for doc in self.by_kind.get("SLO", {}).values():
            self.slo(doc)
        for name, doc in self.by_kind.get("SLI", {}).items():
            if name not in self.used_slis:
                doc.note("", "SLI referenced by no SLO: not converted")
        for doc in self.by_kind.get("AlertNotificationTarget", {}).values():
            if _name(doc.name) not in self.receivers:
                doc.note("", "notification target used by no alert policy: not converted")
        for kind in ("AlertPolicy", "AlertCondition"):
            for doc in self.by_kind.get(kind, {}).values():
                if not any(u.startswith("spec") for u in doc.used):
                    doc.note("", f"{kind} used by no SLO: not converted")
        for kind, docs in self.by_kind.items():
            if kind not in KINDS:
                for doc in docs.values():
                    doc.note("", f"OpenSLO kind {kind!r} is not supported")

    def service(self, doc: _Doc) -> None:
        spec: dict[str, Any] = {}
        if doc.get("spec.description"):
            spec["description"] = str(doc.get("spec.description"))
        self.out.append(
            (
                {
                    "apiVersion": "slawatch/v1",
                    "kind": "Service",
                    "metadata": _metadata(doc),
                    "spec": spec,
                },
                doc,
            )
        )

    def sli(self, slo: _Doc, path: str) -> tuple[_Doc, str] | None:
        """The SLI of an objective (``path``: where ``indicator``/``indicatorRef`` are)."""
        if slo.get(f"{path}.indicator") is not None:
            if slo.get(f"{path}.indicator.metadata") is not None:
                slo.note(f"{path}.indicator.metadata", _FOLDED)
            return slo, f"{path}.indicator.spec"
        ref = slo.get(f"{path}.indicatorRef")
        if ref is None:
            return None
        found = self.by_kind.get("SLI", {}).get(str(ref))
        if found is None:
            slo.note(f"{path}.indicatorRef", f"no SLI named {ref!r} among the imported documents")
            return None
        if found.name not in self.used_slis:
            found.note("metadata", _FOLDED)
        self.used_slis.add(found.name)
        return found, "spec"

    def good(self, sli: _Doc, base: str, slo: _Doc, objective: str) -> dict[str, str] | None:
        if sli.get(f"{base}.description"):
            sli.note(f"{base}.description", "not carried over")
        ratio = sli.get(f"{base}.ratioMetric")
        if ratio is not None:
            for part in ("good", "bad", "total", "raw"):
                if sli.get(f"{base}.ratioMetric.{part}") is not None:
                    sli.note(
                        f"{base}.ratioMetric.{part}",
                        "metric queries are not run: send events with outcome good/bad "
                        f"(type {self.event_type!r}) instead"
                        + _query(sli.raw_at(f"{base}.ratioMetric.{part}")),
                    )
            for flag in ("counter", "rawType"):
                if sli.get(f"{base}.ratioMetric.{flag}") is not None:
                    sli.note(f"{base}.ratioMetric.{flag}", "not needed for events")
            return {"outcome": "good"}
        threshold = sli.get(f"{base}.thresholdMetric")
        if threshold is not None:
            sli.note(
                f"{base}.thresholdMetric",
                "metric queries are not run: send events whose value is the measured number"
                + _query(threshold),
            )
            op = slo.get(f"{objective}.op")
            value = slo.get(f"{objective}.value")
            if op not in _OPS or not isinstance(value, int | float):
                slo.note(objective, "a threshold SLI needs op (lte/gte/lt/gt) and value")
                return None
            return {"value": f"{_OPS[str(op)]} {value:g}"}
        sli.note(base, "the SLI has neither ratioMetric nor thresholdMetric")
        return None

    def alerting(self, slo: _Doc) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Burn-rate rules and notify routes from the SLO's alert policies."""
        rules: list[dict[str, Any]] = []
        routes: list[dict[str, Any]] = []
        policies = slo.get("spec.alertPolicies") or []
        for p, entry in enumerate(policies if isinstance(policies, list) else []):
            path = f"spec.alertPolicies[{p}]"
            if isinstance(entry, str) or (isinstance(entry, dict) and "alertPolicyRef" in entry):
                ref = entry if isinstance(entry, str) else slo.get(f"{path}.alertPolicyRef")
                policy = self.by_kind.get("AlertPolicy", {}).get(str(ref))
                slo.get(path)
                if policy is None:
                    slo.note(path, f"no AlertPolicy named {ref!r} among the imported documents")
                    continue
                if "metadata" not in policy.used:
                    policy.note("metadata", _FOLDED)
                found = self.policy(policy, "spec")
            else:
                slo.get(f"{path}.kind")
                if slo.get(f"{path}.metadata") is not None:
                    slo.note(f"{path}.metadata", _FOLDED)
                found = self.policy(slo, f"{path}.spec")
            rules.extend(found[0])
            routes.extend(found[1])
        return rules, routes

    def policy(self, doc: _Doc, base: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if doc.get(f"{base}.description"):
            doc.note(f"{base}.description", "not carried over")
        if doc.get(f"{base}.alertWhenNoData"):
            doc.note(
                f"{base}.alertWhenNoData",
                "not supported on this objective; add a freshness objective for no-data alerts",
            )
        if doc.get(f"{base}.alertWhenResolved") is False:
            doc.note(f"{base}.alertWhenResolved", "slawatch always sends resolutions")
        if doc.get(f"{base}.alertWhenBreaching") is False:
            doc.note(f"{base}.alertWhenBreaching", "a policy that never alerts was skipped")
            return [], []
        rules: list[dict[str, Any]] = []
        conditions = doc.get(f"{base}.conditions") or []
        for c, entry in enumerate(conditions if isinstance(conditions, list) else []):
            path = f"{base}.conditions[{c}]"
            if isinstance(entry, dict) and "conditionRef" in entry:
                ref = doc.get(f"{path}.conditionRef")
                cond = self.by_kind.get("AlertCondition", {}).get(str(ref))
                if cond is None:
                    doc.note(path, f"no AlertCondition named {ref!r} among the imported documents")
                    continue
                if "metadata" not in cond.used:
                    cond.note("metadata", _FOLDED)
                if cond.get("spec.description"):
                    cond.note("spec.description", "not carried over")
                rule = _burn_rate_rule(cond, "spec")
            else:
                doc.get(f"{path}.kind")
                if doc.get(f"{path}.metadata") is not None:
                    doc.note(f"{path}.metadata", _FOLDED)
                if doc.get(f"{path}.spec.description"):
                    doc.note(f"{path}.spec.description", "not carried over")
                rule = _burn_rate_rule(doc, f"{path}.spec")
            if rule is not None and rule not in rules:
                rules.append(rule)
        receivers: list[str] = []
        targets = doc.get(f"{base}.notificationTargets") or []
        for t, entry in enumerate(targets if isinstance(targets, list) else []):
            path = f"{base}.notificationTargets[{t}]"
            if isinstance(entry, dict) and "targetRef" in entry:
                ref = str(doc.get(f"{path}.targetRef"))
                target = self.by_kind.get("AlertNotificationTarget", {}).get(ref)
                if target is None:
                    doc.note(
                        path,
                        f"no AlertNotificationTarget named {ref!r} among the imported documents",
                    )
                    continue
                metadata = _metadata(target)
                name = self.target(target, "spec", metadata["name"], metadata)
            else:
                doc.get(f"{path}.kind")
                inline_name = _name(str(doc.get(f"{path}.metadata.name") or f"target-{t + 1}"))
                if doc.get(f"{path}.metadata.displayName") is not None:
                    doc.note(f"{path}.metadata.displayName", "not carried over")
                name = self.target(doc, f"{path}.spec", inline_name, {"name": inline_name})
            if name is not None and name not in receivers:
                receivers.append(name)
        routes: list[dict[str, Any]] = []
        if receivers:
            severities = sorted({r["severity"] for r in rules})
            match = {"severity": severities[0]} if len(severities) == 1 else {}
            routes.append({"match": match, "receivers": receivers})
        return rules, routes

    def target(self, doc: _Doc, base: str, name: str, metadata: dict[str, Any]) -> str | None:
        if name in self.receivers:
            return self.receivers[name]
        if doc.get(f"{base}.description"):
            doc.note(f"{base}.description", "not carried over")
        receiver = _receiver(doc, base, name)
        self.receivers[name] = name if receiver is not None else None
        if receiver is not None:
            receiver["metadata"] = metadata
            self.out.append((receiver, doc))
        return self.receivers[name]

    def slo(self, doc: _Doc) -> None:
        service = doc.get("spec.service")
        if not service:
            doc.note("spec.service", "missing: the SLO's objectives need a service")
            return
        if doc.get("spec.description"):
            pass
        method = doc.get("spec.budgetingMethod", "Occurrences")
        if method != "Occurrences":
            doc.note(
                "spec.budgetingMethod",
                f"{method} is not supported: converted as Occurrences (good events / all events)",
            )
        window = _window(doc, "spec")
        rules, routes = self.alerting(doc)
        objectives: list[dict[str, Any]] = []
        names: set[str] = set()
        entries = doc.get("spec.objectives") or []
        for i, _entry in enumerate(entries if isinstance(entries, list) else []):
            path = f"spec.objectives[{i}]"
            display = doc.get(f"{path}.displayName")
            name = _slug(str(display or ""), f"objective-{i + 1}")
            while name in names:
                name = f"{name[:58]}-{i + 1}"
            names.add(name)
            target = doc.get(f"{path}.target")
            percent = doc.get(f"{path}.targetPercent")
            if target is None and isinstance(percent, int | float):
                target = percent / 100
            if not isinstance(target, int | float):
                doc.note(path, "no target / targetPercent")
                continue
            for extra in ("timeSliceTarget", "timeSliceWindow", "compositeWeight"):
                if doc.get(f"{path}.{extra}") is not None:
                    doc.note(f"{path}.{extra}", "not supported (occurrences only, no composites)")
            sli = self.sli(doc, path) or self.sli(doc, "spec")
            if sli is None:
                doc.note(path, "no indicator / indicatorRef")
                continue
            good = self.good(sli[0], sli[1], doc, path)
            if good is None or window is None:
                continue
            objective: dict[str, Any] = {
                "name": name,
                "kind": "ratio",
                "service": str(service),
                "select": {"types": [self.event_type]},
                "good": good,
                "target": float(target),
                **window[0],
            }
            if rules:
                objective["alerting"] = {"policy": "burn-rate", "burnRates": rules}
            elif window[1] or parse_duration_ms(window[0]["window"]) >= 3 * 86_400_000:
                objective["alerting"] = {"policy": "burn-rate"}
            objectives.append(objective)
        if not objectives:
            doc.note("spec.objectives", "no objective could be converted: SLO skipped")
            return
        spec: dict[str, Any] = {"type": self.agreement_type}
        if doc.get("spec.description"):
            spec["description"] = str(doc.get("spec.description"))
        spec["objectives"] = objectives
        if routes:
            spec["notify"] = routes
        agreement = {
            "apiVersion": "slawatch/v1",
            "kind": "Agreement",
            "metadata": _metadata(doc),
            "spec": spec,
        }
        self.out.append((agreement, doc))


def convert(
    raws: Iterable[tuple[str, int, Any]],
    *,
    event_type: str = "request",
    agreement_type: str = "SLA",
) -> Conversion:
    """Convert decoded OpenSLO documents (file, index, document)."""
    result = Conversion()
    docs: list[_Doc] = []
    for file, index, raw in raws:
        if not isinstance(raw, dict):
            result.errors.append(DefinitionError(file, index, "", "a document must be a mapping"))
        elif raw.get("apiVersion") != OPENSLO:
            result.errors.append(
                DefinitionError(
                    file,
                    index,
                    "apiVersion",
                    f"expected {OPENSLO!r}, got {raw.get('apiVersion')!r}",
                )
            )
        elif not isinstance(raw.get("metadata"), dict) or not raw["metadata"].get("name"):
            result.errors.append(DefinitionError(file, index, "metadata.name", "missing"))
        else:
            docs.append(_Doc(raw, file, index))
    converter = _Converter(docs, event_type, agreement_type)
    converter.run()
    located: list[Located] = []
    for document, origin in converter.out:
        try:
            located.append(
                Located(
                    parse_document(document, origin.file, origin.index), origin.file, origin.index
                )
            )
        except DefinitionsInvalid as exc:
            result.errors.extend(
                DefinitionError(
                    e.file, e.index, e.path, f"converted {document['kind']}: {e.message}"
                )
                for e in exc.errors
            )
            continue
        result.documents.append(document)
    result.errors.extend(check_set(located))
    for doc in docs:
        result.notes.extend(dict.fromkeys([*doc.notes, *doc.leftovers()]))
    return result


def import_paths(
    paths: Iterable[Path], *, event_type: str = "request", agreement_type: str = "SLA"
) -> Conversion:
    """Convert every OpenSLO document in the YAML files under ``paths``."""
    raws: list[tuple[str, int, Any]] = []
    errors: list[DefinitionError] = []
    for file in yaml_files(paths):
        try:
            loaded = [d for d in yamlsafe.load_all(file.read_text()) if d is not None]
        except (OSError, yaml.YAMLError) as exc:
            errors.append(DefinitionError(str(file), 0, "", f"cannot read YAML: {exc}"))
            continue
        raws.extend((str(file), i, d) for i, d in enumerate(loaded))
    result = convert(raws, event_type=event_type, agreement_type=agreement_type)
    result.errors[:0] = errors
    return result
