"""kube-scheduler and kube-apiserver JSON: typed, partial decoding and fast encoding. No logic.

Only the fields the extender uses are decoded (msgspec ignores the rest); quantities are parsed
once, here, into integers.
"""
