"""Offline training of the cache verifier (``make cache-verifier``); no runtime code imports this package."""
