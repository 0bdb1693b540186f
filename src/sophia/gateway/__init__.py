"""The OpenAI-compatible AI gateway: a lean ASGI hot path over the engine, plus a Starlette admin API.

``sophia.gateway.engine.Gateway`` is the Python API that other rooms (the MCP servers) call, so
that routing, caching, budgets and cost apply to them as to HTTP clients; ``complete`` and
``embed_texts`` return typed results (``sophia.gateway.api``). In a process it is a service of the
container: ``await services.get(sophia.gateway.service.GATEWAY)``.
"""
