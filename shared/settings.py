"""Settings: one frozen object read from the environment (prefix ``SLAWATCH_``).

Only this module reads the environment. ``main()`` of each command builds one
:class:`Settings` and passes it (or the parts a component needs) down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.outbound import Allow
from shared.secret_refs import DEFAULT_ENV_PATTERN, SecretRules


class Settings(BaseSettings):
    """Every knob of slawatch; see the README's configuration reference."""

    model_config = SettingsConfigDict(env_prefix="SLAWATCH_", frozen=True, extra="ignore")

    # Infrastructure. Unset means "start an embedded one" (``slawatch up`` and tests).
    kafka_bootstrap: str | None = None
    database_url: str | None = None
    data_dir: Path = Path(".slawatch")
    embedded_kafka_port: int = 19092
    embedded_postgres_port: int = 15432

    # Topics
    topic_prefix: str = "slawatch"
    events_partitions: int = Field(default=4, ge=1)
    raw_events_partitions: int = Field(default=4, ge=1)
    breaches_partitions: int = Field(default=2, ge=1)
    deadletter_partitions: int = Field(default=1, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    #: Set on slawatch's topics only when below the replication factor (with RF 3, one
    #: broker may fail and acks=all writes still land on 2); else the broker's default.
    topic_min_insync_replicas: int = Field(default=2, ge=1)

    # HTTP
    host: str = "127.0.0.1"
    ingest_port: int = 8080
    evaluator_port: int = 8081
    notifier_port: int = 8082

    # API keys (shared.http.auth): the default per-key token bucket, requests per
    # second and burst (a key created with --rate/--burst has its own), per instance.
    api_key_rate_per_s: float = Field(default=200.0, gt=0)
    api_key_burst: int = Field(default=400, ge=1)
    #: Full reload of the key cache (revocation takes effect within it at the latest).
    api_key_refresh_ms: int = Field(default=1_000, ge=100, le=2_000)
    #: A key's last-used time is written at most this often (per instance).
    api_key_touch_every_ms: int = Field(default=60_000, ge=1_000)
    #: /metrics needs a key with metrics:read (or admin); open by default.
    metrics_auth: bool = False

    # Ingest limits
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_batch_items: int = Field(default=10_000, ge=1)
    #: Events produced and not yet acknowledged, over all requests (503 past it).
    ingest_max_inflight: int = Field(default=50_000, ge=1)
    #: How long a request waits for the broker's acknowledgements.
    ingest_publish_timeout_s: float = Field(default=10.0, gt=0)
    #: Fail-fast period after a request the broker did not acknowledge.
    ingest_overload_cooldown_ms: int = Field(default=1_000, ge=0)
    #: Acknowledged ids remembered to answer retried batches as duplicates.
    ingest_dedup_capacity: int = Field(default=100_000, ge=1)
    ingest_dedup_horizon_ms: int = Field(default=300_000, ge=1)
    #: An event time further ahead of ingest's clock is refused (422 / dead letter
    #: ``future``); docs/ingest.md, Ranges.
    max_future_skew_ms: int = Field(default=300_000, ge=0, le=7 * 86_400_000)

    # Evaluator
    allowed_lateness_ms: int = Field(default=30_000, ge=0)
    # A checkpoint snapshots every group of a partition: the count bounds the replay
    # after a crash at high rates without checkpointing many times a second.
    checkpoint_every_events: int = Field(default=100_000, ge=1)
    checkpoint_interval_ms: int = Field(default=5_000, ge=10)
    idle_tick_ms: int = Field(default=1_000, ge=10)
    #: Event time an id is remembered per partition, so a repeat is counted once.
    dedup_horizon_ms: int = Field(default=600_000, ge=1)
    #: Groups per objective and partition; events of new groups past it fold into
    #: the overflow group (services.evaluator.objectives.base.MAX_GROUPS).
    evaluator_max_groups: int = Field(default=10_000, ge=1)
    #: Open deadline clocks per (objective, group) and partition; new starts past it
    #: are refused (services.evaluator.objectives.deadline.MAX_OPEN_ENTITIES).
    evaluator_max_open_entities: int = Field(default=100_000, ge=1)
    #: Groups of one grouped objective with Prometheus series of their own (the top by
    #: valid events); the rest share group="(other)" (services.evaluator.metrics).
    metrics_max_groups: int = Field(default=20, ge=0, le=1_000)

    # Notifier
    delivery_timeout_ms: int = Field(default=5_000, ge=10)
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_backoff_base_ms: int = Field(default=500, ge=1)
    delivery_backoff_max_ms: int = Field(default=60_000, ge=1)
    delivery_poll_interval_ms: int = Field(default=500, ge=10)
    # Outbound safety (shared.outbound, shared.secret_refs), checked when a receiver is
    # written (config API, apply, validate) and again at each delivery.
    #: CIDRs and host names receivers may point into despite the deny list, comma
    #: separated (``slawatch up`` allows loopback when unset).
    outbound_allow: str = Field(
        default="",
        # The former name, a JSON list, read for the notifier's sake.
        validation_alias=AliasChoices(
            "outbound_allow", "SLAWATCH_OUTBOUND_ALLOW", "SLAWATCH_OUTBOUND_ALLOW_CIDRS"
        ),
    )
    #: Glob(s), comma separated, an ``env:`` secret reference's name must match.
    secret_env_pattern: str = DEFAULT_ENV_PATTERN
    #: The only directory ``file:`` secret references may read; default <data_dir>/secrets.
    secrets_dir: Path | None = None

    # Consumer group timing (short enough for tests, sane for production)
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    kafka_fetch_max_wait_ms: int = 50
    #: Idempotent producer: "auto" uses it where the broker supports it (Apache Kafka),
    #: not on the embedded broker, which refuses it.
    kafka_idempotence: Literal["auto", "on", "off"] = "auto"

    # Where `slawatch up` loads definitions from
    definitions_path: Path | None = None

    log_level: str = "INFO"
    shutdown_grace_s: float = 8.0

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _allow_parses(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        if isinstance(value, str):
            Allow.parse(value)  # a bad entry fails at start, naming it
        return value

    @property
    def outbound(self) -> Allow:
        """The outbound allow list (:mod:`shared.outbound`)."""
        return Allow.parse(self.outbound_allow)

    @property
    def secret_rules(self) -> SecretRules:
        """What secret references may name (:mod:`shared.secret_refs`)."""
        return SecretRules.of(
            self.secret_env_pattern, self.secrets_dir or self.data_dir / "secrets"
        )

    @model_validator(mode="after")
    def _dedup_covers_lateness(self) -> Settings:
        # An accepted late event may repeat an id up to the lateness behind the newest
        # event; a shorter horizon would have forgotten it and count it twice.
        if self.dedup_horizon_ms < self.allowed_lateness_ms:
            raise ValueError(
                "dedup_horizon_ms must be at least allowed_lateness_ms, or a late repeat "
                "of an event would be counted twice"
            )
        return self
