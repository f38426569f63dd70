"""HTTP routes, kept thin: decode, call one function, encode.

The hot verbs (filter, prioritize, bind) are served by a bare ASGI handler in front of FastAPI,
which serves the rest (explain, health, metrics).
"""
