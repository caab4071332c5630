"""deploy/: the image, compose stack, Prometheus, Grafana and Kubernetes files hang together.

No container engine or cluster runs here, so these tests read the files and check what
would break a deployment: YAML that does not parse, references to services, ports,
subcommands, settings or metrics that do not exist, missing probes and limits, a root
image. Where a real tool is on PATH it is run too (``promtool`` for the Prometheus
config, the rules and the dashboard's queries; ``kubectl kustomize`` for the overlay);
without it that one check is skipped with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.cli import parser
from shared.definitions.load import load_paths
from shared.settings import Settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
SERVICES = ("ingest", "evaluator", "notifier")
SLAWATCH_IMAGE = "slawatch:local"

# Every metric slawatch exports that deploy/ may query. A dashboard or rule naming
# anything else shows an empty panel or never fires, so it fails here instead.
KNOWN_METRICS = frozenset(
    {
        "slawatch_events_ingested_total",
        "slawatch_events_rejected_total",
        "slawatch_late_events_total",
        "slawatch_breaches_opened_total",
        "slawatch_active_breaches",
        "slawatch_sli",
        "slawatch_objective_target",
        "slawatch_burn_rate",
        "slawatch_error_budget_remaining",
        "slawatch_group_sli",
        "slawatch_group_burn_rate",
        "slawatch_group_error_budget_remaining",
        "slawatch_agreement_credit_percent",
        "slawatch_detection_latency_seconds",
        "slawatch_notifications_total",
        "slawatch_delivery_latency_seconds",
        "slawatch_outbox_pending",
    }
)
HISTOGRAMS = frozenset({"slawatch_detection_latency_seconds", "slawatch_delivery_latency_seconds"})
# What the dashboard must show (histograms through their _bucket series).
DASHBOARD_MUST_SHOW = KNOWN_METRICS

METRIC = re.compile(r"\bslawatch_[A-Za-z0-9_]+")
RECORDED = re.compile(r"\bslawatch:[A-Za-z0-9_:]+")
SETTING = re.compile(r"\bSLAWATCH_[A-Z0-9_]+")
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


# -- helpers -------------------------------------------------------------------------


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_one(path: Path) -> Any:
    docs = load_all(path)
    assert len(docs) == 1, f"{path}: expected one YAML document, found {len(docs)}"
    return docs[0]


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression, histogram series folded into the histogram."""
    names = set()
    for name in METRIC.findall(expr):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and base in HISTOGRAMS:
                name = base
                break
        names.add(name)
    return names


def parses_as_command(argv: list[str]) -> bool:
    try:
        parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def settings_from(values: dict[str, Any], where: str) -> Settings:
    """The Settings these SLAWATCH_* variables produce; unknown names fail the test."""
    unknown = sorted(
        k for k in values if k[len("SLAWATCH_") :].lower() not in Settings.model_fields
    )
    assert not unknown, f"{where}: not a field of shared.settings.Settings: {unknown}"
    kwargs = {k[len("SLAWATCH_") :].lower(): str(v) for k, v in values.items()}
    return Settings(**kwargs)


def service_port(component: str, settings: Settings | None = None) -> int:
    port: int = getattr(settings or Settings(), f"{component}_port")
    return port


# -- the known metrics are the exported ones ---------------------------------------


def test_known_metrics_are_declared_by_the_services() -> None:
    """A metric renamed in the code would leave the dashboard and rules blind."""
    declared: set[str] = set()
    for path in [*(ROOT / "services").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]:
        for name in re.findall(r"[\"'](slawatch_[a-z0-9_]+)[\"']", path.read_text()):
            # prometheus_client appends _total to a counter declared without it.
            declared |= {name, f"{name}_total"}
    missing = sorted(KNOWN_METRICS - declared)
    assert not missing, f"no service declares {missing}"


# -- every YAML file -----------------------------------------------------------------


def test_deploy_has_the_expected_files() -> None:
    for relative in (
        "Dockerfile",
        "compose.yaml",
        "README.md",
        "prometheus/prometheus.yml",
        "prometheus/rules.yml",
        "grafana/provisioning/datasources/prometheus.yaml",
        "grafana/provisioning/dashboards/dashboards.yaml",
        "grafana/dashboards/slawatch.json",
        "kubernetes/kustomization.yaml",
    ):
        assert (DEPLOY / relative).is_file(), relative


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in docs), f"{path}: every document is a mapping"


def test_every_slawatch_variable_named_in_deploy_is_a_setting() -> None:
    """Also catches comments and READMEs that name a variable slawatch does not read."""
    files = [DEPLOY / "Dockerfile", DEPLOY / "README.md", *yaml_files()]
    for path in files:
        for name in set(SETTING.findall(path.read_text())):
            field = name[len("SLAWATCH_") :].lower()
            assert field in Settings.model_fields, (
                f"{path.relative_to(ROOT)}: {name} is not a setting"
            )


# -- compose -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = load_one(DEPLOY / "compose.yaml")
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return dict(deps)


def slawatch_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if s.get("image") == SLAWATCH_IMAGE}


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return dict(env)


def test_compose_runs_the_whole_stack(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "postgres", "migrate", *SERVICES, "prometheus", "grafana"):
        assert name in services, f"compose has no {name} service"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].split(":")[1].startswith("17")


def test_compose_dependencies_exist_and_are_acyclic(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            condition = spec.get("condition", "service_started")
            assert condition in DEPENDS_CONDITIONS, f"{name} → {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must be one-shot"
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in depends_on(service), f"{name}: {mode}"
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' → '.join((*path, name))}"
        if name not in done:
            for target in depends_on(services[name]):
                visit(target, (*path, name))
            done.add(name)

    for name in services:
        visit(name, ())


def test_compose_slawatch_commands_are_real_subcommands(
    services: dict[str, dict[str, Any]],
) -> None:
    commands = {name: s.get("command") for name, s in slawatch_services(services).items()}
    for name, command in commands.items():
        assert isinstance(command, list), f"{name}: command as an exec-form list"
        assert parses_as_command(command), f"{name}: `slawatch {' '.join(command)}` is not valid"
    used = {command[0] for command in commands.values()}
    assert {"migrate", "apply", *SERVICES} <= used
    for name in SERVICES:
        assert commands[name] == [name]


def test_compose_services_wait_for_schema_definitions_and_broker(
    services: dict[str, dict[str, Any]],
) -> None:
    def upstream(name: str) -> set[str]:
        found: set[str] = set()
        for target in depends_on(services[name]):
            found |= {target, *upstream(target)}
        return found

    for name in SERVICES:
        before = upstream(name)
        assert {"kafka", "postgres", "migrate"} <= before, f"{name} starts before {before}"
        assert depends_on(services[name])["kafka"]["condition"] == "service_healthy"
    apply = [n for n, s in slawatch_services(services).items() if s["command"][0] == "apply"]
    assert apply and all(a in upstream(name) for a in apply for name in SERVICES)


def test_compose_slawatch_environment_is_valid_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in slawatch_services(services).items():
        env = {k: v for k, v in env_of(service).items() if k.startswith("SLAWATCH_")}
        settings = settings_from(env, f"compose service {name}")
        assert settings.host == "0.0.0.0", f"{name} must bind all interfaces in a container"
        assert settings.kafka_bootstrap and settings.database_url, f"{name}: embedded infra"


def test_compose_urls_point_at_the_kafka_and_postgres_services(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = env_of(services["kafka"])
    advertised = {
        urlsplit(listener).netloc for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    listener_names = {
        item.split(":")[0] for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    }
    declared = {
        urlsplit(listener).scheme.upper() for listener in kafka["KAFKA_LISTENERS"].split(",")
    }
    assert declared <= listener_names
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] in declared
    assert str(kafka["KAFKA_PROCESS_ROLES"]).replace(" ", "") in (
        "broker,controller",
        "controller,broker",
    )
    assert str(kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    postgres = env_of(services["postgres"])
    for name, service in slawatch_services(services).items():
        env = env_of(service)
        for server in env["SLAWATCH_KAFKA_BOOTSTRAP"].split(","):
            assert server in advertised, f"{name}: {server} is not an advertised listener"
        db = urlsplit(env["SLAWATCH_DATABASE_URL"])
        assert db.hostname in services and "postgres" in services[db.hostname]["image"]
        assert db.username == postgres["POSTGRES_USER"]
        assert db.password == postgres["POSTGRES_PASSWORD"]
        assert db.path.lstrip("/") == postgres["POSTGRES_DB"]


def test_compose_ports_and_healthchecks_match_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES:
        service = services[name]
        env = {k: v for k, v in env_of(service).items() if k.startswith("SLAWATCH_")}
        port = service_port(name, settings_from(env, name))
        published = [str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])]
        assert str(port) in published, f"{name} does not publish its port {port}: {published}"
        check = " ".join(service["healthcheck"]["test"])
        assert f":{port}/readyz" in check, f"{name}: healthcheck does not probe /readyz on {port}"


def test_compose_evaluator_replicas_fit_the_partitions(services: dict[str, dict[str, Any]]) -> None:
    evaluator = services["evaluator"]
    replicas = evaluator.get("deploy", {}).get("replicas", 1)
    env = {k: v for k, v in env_of(evaluator).items() if k.startswith("SLAWATCH_")}
    partitions = settings_from(env, "evaluator").events_partitions
    assert 1 <= replicas <= partitions
    if replicas > 1:
        # Fixed host ports cannot be shared by several replicas.
        assert all(":" not in str(p) for p in evaluator.get("ports", []))


def test_compose_bind_mounts_and_build_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            context = DEPLOY / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file()


def test_compose_example_definitions_are_valid() -> None:
    """The `definitions` service applies the examples baked into the image."""
    assert load_paths([ROOT / "examples"])


# -- Prometheus ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    doc = load_one(DEPLOY / "prometheus" / "prometheus.yml")
    assert isinstance(doc, dict)
    return doc


def scrape_targets(job: dict[str, Any]) -> Iterator[tuple[str, int]]:
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, port = target.rsplit(":", 1)
            yield host, int(port)
    for dns in job.get("dns_sd_configs", []):
        assert dns.get("type") == "A", "compose service names resolve to A records"
        for host in dns["names"]:
            yield host, int(dns["port"])


def test_prometheus_scrapes_every_service_of_the_stack(
    prometheus: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    jobs = prometheus["scrape_configs"]
    names = [job["job_name"] for job in jobs]
    assert len(names) == len(set(names)), "duplicate job_name"
    scraped: dict[str, int] = {}
    for job in jobs:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for host, port in scrape_targets(job):
            if host in ("localhost", "127.0.0.1"):
                continue
            assert host in services, f"{job['job_name']} scrapes unknown host {host}"
            scraped[host] = port
    for name in SERVICES:
        assert scraped.get(name) == service_port(name), f"{name} not scraped on its port"
    for path in prometheus.get("rule_files", []):
        assert (DEPLOY / "prometheus" / path).is_file(), path


def load_rules() -> list[dict[str, Any]]:
    doc = load_one(DEPLOY / "prometheus" / "rules.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_rules_query_known_metrics_and_alerts_are_labelled() -> None:
    rules = load_rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    assert rules and recorded
    for rule in rules:
        expr = rule["expr"]
        unknown = metric_names(expr) - KNOWN_METRICS
        assert not unknown, f"{rule.get('record') or rule.get('alert')}: unknown metrics {unknown}"
        missing = set(RECORDED.findall(expr)) - recorded
        assert not missing, f"{rule.get('record') or rule.get('alert')}: unrecorded {missing}"
        if "alert" in rule:
            assert rule["labels"]["severity"] in ("page", "warning", "ticket", "info")
            assert rule["annotations"]["summary"]
    # Alerts through recording rules too: the metric an alert ultimately watches.
    sources = {r["record"]: metric_names(r["expr"]) for r in rules if "record" in r}
    alerted: set[str] = set()
    for rule in rules:
        if "alert" in rule:
            alerted |= metric_names(rule["expr"])
            for name in RECORDED.findall(rule["expr"]):
                alerted |= sources[name]
    assert "slawatch_active_breaches" in alerted


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not on PATH (Debian package `prometheus`); structural checks still ran"
        )
    return path


def run_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{' '.join(argv)}\n{result.stdout}\n{result.stderr}"
    return result


def test_promtool_accepts_config_and_rules() -> None:
    tool = promtool()
    run_tool(tool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    run_tool(tool, "check", "rules", str(DEPLOY / "prometheus" / "rules.yml"))


def test_promtool_rule_unit_tests_pass() -> None:
    """deploy/prometheus/rules_test.yml: alerts fire, stay quiet and aggregate as meant."""
    tests = DEPLOY / "prometheus" / "rules_test.yml"
    assert load_one(tests)["rule_files"] == ["rules.yml"]
    run_tool(promtool(), "test", "rules", str(tests))


def test_promtool_accepts_every_dashboard_query(tmp_path: Path, dashboard: dict[str, Any]) -> None:
    """Each panel query, with Grafana's variables filled in, as a recording rule."""
    tool = promtool()
    substitutions = {
        "$__rate_interval": "1m",
        "$__interval": "1m",
        "$__range": "1h",
        "$objective": ".*",
        "$target": "0.99",
    }
    rules = []
    for index, expr in enumerate(dashboard_exprs(dashboard)):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unsubstituted Grafana variable in {expr}"
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_tool(tool, "check", "rules", str(path))


# -- Grafana -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc = json.loads((DEPLOY / "grafana" / "dashboards" / "slawatch.json").read_text())
    assert isinstance(doc, dict)
    return doc


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]


def test_grafana_datasource_points_at_compose_prometheus(
    services: dict[str, dict[str, Any]],
) -> None:
    doc = load_one(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    (source,) = doc["datasources"]
    assert source["type"] == "prometheus" and source["uid"]
    url = urlsplit(source["url"])
    assert url.hostname in services and url.hostname == "prometheus"
    published = [str(p) for p in services["prometheus"]["ports"]]
    assert any(p.endswith(f":{url.port}") for p in published), published


def test_grafana_dashboard_provider_reads_the_mounted_folder(
    services: dict[str, dict[str, Any]],
) -> None:
    doc = load_one(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")
    (provider,) = doc["providers"]
    mounts = dict(str(v).split(":")[:2] for v in services["grafana"]["volumes"])
    assert mounts.get("./grafana/dashboards") == provider["options"]["path"]
    assert mounts.get("./grafana/provisioning") == "/etc/grafana/provisioning"


def test_grafana_panels_have_datasource_and_queries(dashboard: dict[str, Any]) -> None:
    provisioned = load_one(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    uids = {s["uid"] for s in provisioned["datasources"]}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    uids |= {f"${{{n}}}" for n, v in variables.items() if v["type"] == "datasource"}
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        title = panel.get("title")
        assert title, f"panel {panel['id']} has no title"
        assert panel.get("datasource", {}).get("uid") in uids, f"{title}: datasource"
        assert panel.get("targets"), f"{title}: no queries"
        for target in panel["targets"]:
            assert target.get("expr"), f"{title}: empty query"
            assert target.get("datasource", panel["datasource"])["uid"] in uids
            for used in re.findall(r"\$(\w+)", target["expr"]):
                assert used.startswith("__") or used in variables, f"{title}: ${used} undefined"


def test_grafana_queries_use_known_metrics_and_cover_them(dashboard: dict[str, Any]) -> None:
    used: set[str] = set()
    for expr in dashboard_exprs(dashboard):
        names = metric_names(expr)
        assert names <= KNOWN_METRICS, f"unknown metrics {names - KNOWN_METRICS} in {expr}"
        used |= names
        for histogram in HISTOGRAMS & names:
            if "histogram_quantile" in expr:
                assert f"{histogram}_bucket" in expr and "le" in expr, expr
    assert not DASHBOARD_MUST_SHOW - used, (
        f"dashboard shows nothing of {DASHBOARD_MUST_SHOW - used}"
    )
    quantiles = " ".join(e for e in dashboard_exprs(dashboard) if "detection_latency" in e)
    assert "histogram_quantile(0.5" in quantiles and "histogram_quantile(0.99" in quantiles


def test_grafana_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the grid"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


# -- Kubernetes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    doc = load_one(K8S / "kustomization.yaml")
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def manifests(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc for name in kustomization["resources"] for doc in load_all(K8S / name)]


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def k8s_settings(manifests: list[dict[str, Any]]) -> Settings:
    values: dict[str, Any] = {}
    for config in of_kind(manifests, "ConfigMap").values():
        values |= config.get("data", {})
    for secret in of_kind(manifests, "Secret").values():
        values |= secret.get("stringData", {})
    return settings_from(values, "ConfigMap/Secret")


def component(deployment: dict[str, Any]) -> str:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    name: str = labels["app.kubernetes.io/component"]
    return name


def test_kustomization_lists_every_manifest(kustomization: dict[str, Any]) -> None:
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present, f"listed {sorted(listed)}, present {sorted(present)}"
    for generator in kustomization.get("configMapGenerator", []):
        for file in generator.get("files", []):
            assert (K8S / file.split("=")[-1]).is_file(), file


def test_k8s_definitions_are_valid(kustomization: dict[str, Any]) -> None:
    files = [
        K8S / file.split("=")[-1]
        for generator in kustomization.get("configMapGenerator", [])
        for file in generator.get("files", [])
    ]
    assert files and load_paths(files)


def test_k8s_settings_are_valid(manifests: list[dict[str, Any]]) -> None:
    settings = k8s_settings(manifests)
    assert settings.host == "0.0.0.0"
    assert settings.kafka_bootstrap and settings.database_url
    assert settings.topic_replication_factor >= 1


def test_k8s_deployments_run_the_three_services(manifests: list[dict[str, Any]]) -> None:
    deployments = of_kind(manifests, "Deployment")
    assert sorted(component(d) for d in deployments.values()) == sorted(SERVICES)
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [component(deployment)], name
        assert parses_as_command(container["args"])


def test_k8s_deployments_have_probes_resources_and_a_grace_period(
    manifests: list[dict[str, Any]],
) -> None:
    settings = k8s_settings(manifests)
    for name, deployment in of_kind(manifests, "Deployment").items():
        template = deployment["spec"]["template"]
        spec = template["spec"]
        (container,) = spec["containers"]
        port = service_port(component(deployment), settings)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports.get("http") == port, f"{name}: container port {ports} vs setting {port}"
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            check = container[probe]["httpGet"]
            assert check["path"] == path, f"{name}: {probe}"
            assert check["port"] in (port, "http"), f"{name}: {probe} port"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name}: {kind}"
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
        pause = int(pre_stop["command"][-1]) if pre_stop.get("command", [""])[0] == "sleep" else 0
        grace = spec["terminationGracePeriodSeconds"]
        assert grace >= 15 and grace >= pause + settings.shutdown_grace_s + 5, f"{name}: grace"
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations.get("prometheus.io/path", "/metrics") == "/metrics"
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security.get("runAsUser", 1) != 0
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_k8s_references_resolve(
    manifests: list[dict[str, Any]], kustomization: dict[str, Any]
) -> None:
    configmaps = set(of_kind(manifests, "ConfigMap"))
    configmaps |= {g["name"] for g in kustomization.get("configMapGenerator", [])}
    secrets = set(of_kind(manifests, "Secret"))
    workloads = [*of_kind(manifests, "Deployment").values(), *of_kind(manifests, "Job").values()]
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        mounts: set[str] = set()
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert parses_as_command(container["args"]), container["args"]
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
            for var in container.get("env", []):
                assert var["name"][len("SLAWATCH_") :].lower() in Settings.model_fields
            mounts |= {m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        assert mounts <= set(volumes), (
            f"{workload['metadata']['name']}: mounts {mounts - set(volumes)}"
        )
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps


def test_k8s_services_select_deployments(manifests: list[dict[str, Any]]) -> None:
    deployments = of_kind(manifests, "Deployment").values()
    for name, service in of_kind(manifests, "Service").items():
        selector = service["spec"]["selector"]
        matches = [
            d
            for d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} deployments"
        (container,) = matches[0]["spec"]["template"]["spec"]["containers"]
        names = {p["name"] for p in container["ports"]} | {
            p["containerPort"] for p in container["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, f"Service {name}: targetPort {port['targetPort']}"


def test_k8s_evaluator_replicas_fit_the_partitions(manifests: list[dict[str, Any]]) -> None:
    settings = k8s_settings(manifests)
    for deployment in of_kind(manifests, "Deployment").values():
        if component(deployment) == "evaluator":
            assert 1 <= deployment["spec"]["replicas"] <= settings.events_partitions


def test_k8s_job_migrates_then_applies(manifests: list[dict[str, Any]]) -> None:
    (job,) = of_kind(manifests, "Job").values()
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    assert [c["args"][0] for c in spec["initContainers"]] == ["migrate"]
    assert [c["args"][0] for c in spec["containers"]] == ["apply"]


def test_kubectl_kustomize_renders(kustomization: dict[str, Any]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH; the manifests were checked one by one")
    rendered = load_all_text(run_tool(kubectl, "kustomize", str(K8S)).stdout)
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds.count("Deployment") == 3 and "Job" in kinds
    image = kustomization["images"][0]
    for doc in rendered:
        assert (
            doc["metadata"].get("namespace", kustomization["namespace"])
            == kustomization["namespace"]
        )
        if doc["kind"] in ("Deployment", "Job"):
            spec = doc["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                assert container["image"] == f"{image['newName']}:{image['newTag']}"


def load_all_text(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


# -- Dockerfile ----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    logical: list[str] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = dockerfile_instructions()
    args = dict(
        rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest
    )
    froms = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    for image in froms:
        resolved = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)
        assert resolved.startswith("python:3.11-slim"), resolved


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last:]


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user


def test_dockerfile_installs_with_constraints_and_runs_slawatch() -> None:
    instructions = dockerfile_instructions()
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert re.search(r"pip install -c constraints\.txt \.(\s|$)", runs), (
        "pip install -c constraints.txt ."
    )
    assert " -e " not in runs and "--editable" not in runs
    copied = " ".join(rest for keyword, rest in instructions if keyword == "COPY")
    assert "constraints.txt" in copied
    entrypoints = [rest for keyword, rest in final_stage() if keyword == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["slawatch"]
    env = " ".join(rest for keyword, rest in final_stage() if keyword == "ENV")
    assert "SLAWATCH_HOST=0.0.0.0" in env


def test_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, _destination = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") in included, f"COPY {source}: excluded by the dockerignore"
