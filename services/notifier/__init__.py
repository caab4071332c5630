"""The notifier: breach events in, alerts out.

Pipeline (each stage one module):

    intake      breaches topic → breaches / breach_events / deliveries (one transaction)
    routing     breach + agreement routes → receiver names            (pure)
    escalation  escalate steps → delayed outbox rows                  (pure)
    grouping    Alertmanager group timing                             (pure)
    groups      grouped rows held and released on the group's ticks, reminders
    outbox      claim due deliveries, record attempts, decide next state
    worker      claimed delivery → cancelled? silenced? circuit open? → channel → outcome
    breaker     per-receiver circuit breaker                          (pure)
    silencing   silences and maintenance windows                      (pure)
    channels/   one folder per channel: webhook, slack, teams, pagerduty, email,
                alertmanager; templates (Jinja2), secrets (env:/file:)
    backoff     exponential backoff with full jitter                  (pure)
    acks        acknowledgement; acklink: signed expiring ack links
    api         breaches, per-receiver attempts, acks, silences, ops endpoints
    main        wiring, start order, graceful stop
"""
