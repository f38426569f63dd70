"""placement-extender: a kube-scheduler extender webhook.

Data flows one way, and the packages show it:
``wire`` (kube-scheduler JSON) → ``state`` (cluster snapshot) → ``policy`` (pure predicates and
scores) → ``commit`` (CAS reservation + Binding); ``api`` holds the thin HTTP routes.
"""

# The release version: the package's, the image tag, the chart's appVersion (tests/test_release.py).
__version__ = "0.1.0"
