"""Sophia: a self-hostable AI operations platform."""

__version__ = "0.1.0"
