"""The evaluator: sliding-window SLA state per objective and group, breach detection,
checkpoints of state and offsets in PostgreSQL.

Pure core: :mod:`.window`, :mod:`.sketch`, :mod:`.period`, :mod:`.business`,
:mod:`.objectives` (one module per kind and alerting policy), :mod:`.engine`,
:mod:`.state` (event time in integer ms, no I/O). Thin shell: :mod:`.fastevent`,
:mod:`.checkpoint`, :mod:`.consumer`, :mod:`.api`, :mod:`.metrics`, wired in
:mod:`.main`; :mod:`.backtest` runs the same engine offline.

Memory per (objective, group), as measured (``sys.getsizeof`` of the objects held):

=================================  ==========================================================
ratio, threshold                   one ring of at most 600 buckets x 8 bytes: <= 5 KiB
                                   (a 5m window: 300 buckets, about 2.6 KiB)
ratio, burn-rate (defaults, 30d)   five rings + a budget ring of 30 buckets: about 3.7 KiB
                                   with one short group attribute (tested < 4 KiB)
ratio, calendar window             as burn-rate, the budget ring replaced by a counter
quantile                           up to 60 per-bucket sketches + a running one; a bucket
                                   holds a dict of the bins its values fall in (about
                                   100 bytes per bin): roughly 2-20 KiB by value spread
deadline (per open entity)         about 400 bytes; entities leave on stop. Not capped:
                                   open entities grow with unanswered tickets
freshness                          about 300 bytes
=================================  ==========================================================

Per partition also the dedup set: about 120 bytes per event id within the horizon
(10 minutes of event time), i.e. proportional to the event rate.
"""
