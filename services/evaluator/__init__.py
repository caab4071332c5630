"""The evaluator: sliding-window SLA state per objective and group, breach detection,
checkpoints of state and offsets in PostgreSQL.

Pure core: :mod:`.window`, :mod:`.objectives`, :mod:`.engine`, :mod:`.state`
(event time in integer ms, no I/O). Thin shell: :mod:`.checkpoint`, :mod:`.consumer`,
:mod:`.api`, :mod:`.metrics`, wired in :mod:`.main`.
"""
