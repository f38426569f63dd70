"""Commit: turn a placement into API writes, safely shared by many replicas and schedulers.

The API server's optimistic concurrency is the only lock: a reservation is written to the node's
ledger Lease with a merge patch that carries the Lease's resourceVersion (a compare-and-swap),
then the Binding is created with the pod's UID as a precondition.
"""
