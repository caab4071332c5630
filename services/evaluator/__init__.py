"""The evaluator: sliding-window SLA state per objective and group, breach detection,
checkpoints of state and offsets in PostgreSQL.

Pure core: :mod:`.window`, :mod:`.sketch`, :mod:`.period`, :mod:`.business`,
:mod:`.objectives` (one module per kind and alerting policy), :mod:`.engine`,
:mod:`.state` (event time in integer ms, no I/O). Thin shell: :mod:`.fastevent`,
:mod:`.checkpoint`, :mod:`.consumer`, :mod:`.api`, :mod:`.metrics`, wired in
:mod:`.main`; :mod:`.backtest` runs the same engine offline.

Memory per (objective, group), as measured (``sys.getsizeof`` of the objects held):

=================================  ==========================================================
ratio, threshold                   one ring of at most 600 buckets x 8 bytes: <= 5.3 KiB
                                   (a 5m window: 300 buckets, about 2.8 KiB)
ratio, burn-rate (defaults, 30d)   five rings + a budget ring of 30 buckets: about 3.7 KiB
                                   with one short group attribute (tested < 4 KiB)
ratio, calendar window             as burn-rate, the budget ring replaced by a counter
quantile                           12 per-bucket dense sketches (4 bytes per bin of the
                                   occupied range, merged only when a quantile is read):
                                   about 13 KiB with ~250 bins (a lognormal latency
                                   spread over two orders of magnitude)
deadline (per open entity)         about 550 bytes; entities leave on stop. Not capped:
                                   open entities grow with unanswered tickets
freshness                          about 550 bytes
=================================  ==========================================================

Per partition also the dedup set: about 50 bytes per event id within the horizon
(10 minutes of event time) plus the id string (about 70 bytes for 20 characters),
i.e. proportional to the event rate: 1,000 events/s for 10 minutes hold ~70 MB.
Checkpoints write only the ids new since the previous one (:class:`.state.SeenIds`).
"""
