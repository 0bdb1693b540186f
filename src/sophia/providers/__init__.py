"""Model providers: one module per vendor (data) on a few wire adapters (protocols).

``sophia.providers.catalog.Catalog`` is the entry point: the enabled providers, their models,
prices and aliases, built from the settings.
"""
