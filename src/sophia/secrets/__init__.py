"""Secrets and configuration environments.

- ``esc``: the offline evaluator of Pulumi ESC environments (``evaluate``: imports, ``${…}``
  references, builtins, ``fn::open`` providers, ``fn::rotate`` rotators, the redacted view,
  diagnostics with ESC's texts and paths; the ``environmentVariables`` and ``files`` outputs).
- ``esc_syntax``: definitions parsed into expression trees (YAML 1.2 scalars, the property-access
  grammar, builtin calls, ESC's diagnostic paths).
- ``esc_value``: evaluated values with their secret/unknown flags, ``toString``, the ciphertext envelope.
- ``esc_builtins``: ``fn::join``, ``fn::split``, ``fn::concat``, ``fn::fromJSON``, ``fn::toJSON``,
  ``fn::fromBase64``, ``fn::toBase64``, ``fn::toString``.
- ``esc_schema``: the JSON-schema subset that checks provider inputs and rotator state.
- ``scan``: credentials found in files and log lines.
"""
