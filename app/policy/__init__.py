"""Placement policy: pure predicates and score components over node columns.

No I/O and no web or wire imports. Each predicate and score lives in its own small module,
evaluates all candidate nodes at once (numpy), and can explain its verdict for one node.
"""
