"""Faithful stand-ins for servers this machine cannot reach, served over real loopback HTTP."""
