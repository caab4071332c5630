"""Secret references: only allowed environment names, only files inside the secrets
directory (lexically at creation, with symlinks followed at resolution)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notifier.secrets import SecretRefused, Secrets, SecretUnavailable
from shared.secret_refs import SecretRules, reference_problem

ENV = {
    "SLAWATCH_SECRET_HOOK": "s3cret",
    "DATABASE_URL": "postgresql://u:p@db/x",
    "AWS_SECRET_ACCESS_KEY": "aws",
    "SLAWATCH_SECRET_KEY": "master",
    "TEAM_HOOK": "team",
}


@pytest.fixture
def rules(tmp_path: Path) -> SecretRules:
    base = tmp_path / "secrets"
    (base / "nested").mkdir(parents=True)
    (base / "hook").write_text("file-secret\n")
    (base / "nested" / "token").write_text("nested-secret")
    outside = tmp_path / "outside"
    outside.write_text("not yours")
    (base / "escape").symlink_to(outside)  # a link pointing out
    (base / "dir-escape").symlink_to(tmp_path)  # a directory link pointing out
    (base / "inside").symlink_to(base / "hook")  # a link that stays inside
    # a Kubernetes secret volume: key -> ..data/key, ..data -> ..2024_01_01
    (base / "..2024_01_01").mkdir()
    (base / "..2024_01_01" / "k8s").write_text("k8s-secret")
    (base / "..data").symlink_to(base / "..2024_01_01")
    (base / "k8s").symlink_to(base / "..data" / "k8s")
    return SecretRules(secrets_dir=base)


def test_allowed(rules: SecretRules) -> None:
    secrets = Secrets(ENV, rules)
    base = rules.secrets_dir
    assert secrets.resolve("env:SLAWATCH_SECRET_HOOK") == "s3cret"
    assert secrets.resolve("file:hook") == "file-secret"
    assert secrets.resolve(f"file:{base}/hook") == "file-secret"
    assert secrets.resolve("file:nested/token") == "nested-secret"
    assert secrets.resolve("file:inside") == "file-secret"
    assert secrets.resolve("file:k8s") == "k8s-secret"


@pytest.mark.parametrize(
    "reference",
    [
        "env:DATABASE_URL",
        "env:AWS_SECRET_ACCESS_KEY",
        "env:TEAM_HOOK",
        "env:SLAWATCH_SECRET_KEY",  # slawatch's own setting, though it matches
        "env:slawatch_secret_hook",  # case sensitive
        "env:",
        "env:A-B",
        "file:/etc/passwd",
        "file:../outside",
        "file:nested/../../outside",
        "file:{base}/../outside",
        "file:{base}/./hook",
        "file:{base}",
        "file:{base}-evil/hook",  # a sibling sharing the prefix
        "file://etc/passwd",
        "file:nested//token",
        "file:~/secret",
        "file:~root/.ssh/id_rsa",
        "file:hook\x00.txt",
        "file:nested\\..\\..\\outside",
        "file:",
        "file:escape",  # symlink out (caught at resolution)
        "file:dir-escape/outside",  # through a directory symlink out
        "plain-text",
    ],
)
def test_refused(rules: SecretRules, reference: str) -> None:
    reference = reference.replace("{base}", str(rules.secrets_dir))
    with pytest.raises(SecretRefused):
        Secrets(ENV, rules).resolve(reference)


@pytest.mark.parametrize(
    ("reference", "lexically_fine"),
    [("env:DATABASE_URL", False), ("file:/etc/passwd", False), ("file:escape", True)],
)
def test_creation_checks_are_lexical(
    rules: SecretRules, reference: str, lexically_fine: bool
) -> None:
    """At creation nothing is read (the file may not exist yet on this host)."""
    assert (reference_problem(reference, rules) is None) is lexically_fine


def test_patterns_are_configurable(rules: SecretRules) -> None:
    custom = SecretRules.of("TEAM_*, OTHER_*", rules.secrets_dir)
    assert Secrets(ENV, custom).resolve("env:TEAM_HOOK") == "team"
    with pytest.raises(SecretRefused):
        Secrets(ENV, custom).resolve("env:SLAWATCH_SECRET_HOOK")


def test_missing_is_retriable_refused_is_not(rules: SecretRules) -> None:
    with pytest.raises(SecretUnavailable):
        Secrets(ENV, rules).resolve("env:SLAWATCH_SECRET_UNSET")
    with pytest.raises(SecretUnavailable):
        Secrets(ENV, rules).resolve("file:not-there-yet")
    assert not issubclass(SecretRefused, SecretUnavailable)
