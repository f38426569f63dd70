"""Cluster state: per-node records and the snapshot the policy reads.

Records are built the same way whatever the source (a file or API watches). A change replaces a
node's record and updates that node's row in the columnar table; nothing is rebuilt per request.
"""
