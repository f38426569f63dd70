"""Load tests for the extender: payload generator, a bare ASGI floor, k6 scripts and a runner.

See loadtest/README.md. Nothing here is imported by the app.
"""
