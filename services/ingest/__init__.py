"""The ingest service: the front door of slawatch.

Events come in over HTTP (``POST /v1/events``) and from the raw Kafka topic
(``<prefix>.events.raw``); valid ones leave, normalized, on ``<prefix>.events``
keyed by service; invalid raw records go to ``<prefix>.deadletter``.

Pure core (no I/O, no clock reads)::

    parsing    body bytes + Content-Type -> decoded items | whole-request problem
    normalize  decoded item + received_at -> Event | item rejection
    items      the per-item vocabulary (Decoded, Rejected, FieldError, reasons)
    problems   RFC 9457 problem details
    results    per-item HTTP results and the 202 body
    records    outgoing Kafka records; routing of one raw record

Shell (I/O)::

    body          bounded request-body reader
    publisher     produce records, await every acknowledgement
    api           the FastAPI app
    raw_consumer  the raw-topic loop (produce, await acks, then commit)
    metrics       Prometheus metrics on an injected registry
    main          wiring, supervision and graceful shutdown
"""
