"""placement-extender: a kube-scheduler extender webhook.

Data flows one way, and the packages show it:
``wire`` (kube-scheduler JSON) → ``state`` (cluster snapshot) → ``policy`` (pure predicates and
scores) → ``commit`` (CAS reservation + Binding); ``api`` holds the thin HTTP routes.
"""
