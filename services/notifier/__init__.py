"""The notifier: breach events in, alerts out.

Pipeline (each stage one module):

    intake      breaches topic → breaches / breach_events / deliveries (one transaction)
    routing     breach + agreement routes → receiver names            (pure)
    outbox      claim due deliveries, record attempts, decide next state
    worker      claimed delivery → channel → outcome
    channels/   one folder per channel (webhook today)
    backoff     exponential backoff with full jitter                  (pure)
    api         GET /v1/breaches, /v1/breaches/{id}, ops endpoints
    main        wiring, start order, graceful stop
"""
