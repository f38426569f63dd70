"""``simulate``: place a batch of pending pods on a copy of the cluster snapshot, with the live
path's own demand reading, predicates, scores and capacity accounting, then say what capacity is
missing. Nothing here writes to the cluster or to the snapshot it was given.

Modules: :mod:`.pending` (reading pods, queue order), :mod:`.placement` (the placement loop),
:mod:`.capacity` (node shapes, nodes to add), :mod:`.report` (table and JSON), :mod:`.command`
(the CLI), :mod:`.plot` (PNG charts; needs the ``report`` extra and is imported only on demand).
"""
