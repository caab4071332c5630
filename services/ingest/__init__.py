"""The ingest service: the front door of slawatch.

Events come in over HTTP (``POST /v1/events``, the alert webhooks under
``/v1/integrations/``), from the raw Kafka topic (``<prefix>.events.raw``) and from
the users' own topics attached as ``Source`` definitions; valid ones leave,
normalized, on ``<prefix>.events`` keyed by service; invalid Kafka records go to
``<prefix>.deadletter``. See docs/ingest.md.

Pure core (no I/O, no clock reads)::

    parsing    body bytes + Content-Type -> decoded items | whole-request problem
    cloudevents  CloudEvents 1.0 (structured, batch, binary) -> canonical items
    alerts     Alertmanager / Grafana webhook payloads -> canonical items
    mapping    a Source record in a foreign JSON shape -> Event | every error
    normalize  decoded item + received_at -> Event | item rejection
    items      the per-item vocabulary (Decoded, Rejected, FieldError, reasons)
    problems   RFC 9457 problem details
    results    per-item HTTP results and the 202 body
    records    outgoing Kafka records; routing of one raw record

Shell (I/O)::

    body          bounded request-body reader (identity or streamed gzip)
    backpressure  in-flight bound and fail-fast state of the HTTP intake
    dedup         recently acknowledged ids (retried batches)
    publisher     produce records, await every acknowledgement
    api           the FastAPI app
    raw_consumer  the raw-topic loop (produce, await acks, then commit)
    sources       one runner per Source (same order), the manager, source metrics
    source_catalog, source_service, source_api, source_cli
                  Source definitions from the DB (hot reload), wiring, REST, CLI
    metrics       Prometheus metrics on an injected registry
    main          wiring, supervision and graceful shutdown
"""
