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
- ``scan``: credentials found in files and log lines (``credential_spans`` is the one rule table that
  redaction uses too).
- ``backend``: the interface of a store of environments (``Backend``, ``Opened``, the errors);
  ``store`` the local tamper-evident store, ``keys`` its master key and sealing, ``archive`` encrypted
  backups verified before restore, ``pulumi`` Pulumi ESC itself through ``pulumi-esc-sdk``.
- ``rotators``: ``fn::rotate::postgres`` (two roles taking turns); ``edit``: the text edits of
  ``sophia env`` (set/unset by path, dotenv, import rules, diffs).
- ``mask``: every known secret value (and its encoded forms) masked in every output.
"""
