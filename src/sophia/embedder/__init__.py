"""The bundled sentence encoder (all-MiniLM-L6-v2): used by the cache, the router and the local provider."""
