"""Period reports of an agreement: attainment, breaches, credits, termination risk.

    periods.py   which period a request names (pure)
    compute.py   the report from rollups, breaches and maintenance windows (pure)
    render.py    JSON, CSV and HTML of a report (pure)
    store.py     reading the inputs from PostgreSQL
    api.py       GET /v1/agreements/{name}/report on the notifier
    cli.py       ``slawatch report``

See docs/reports.md for the formulas.
"""
