"""Developer tools: the generated configuration reference and the docs check (``make lint``)."""
