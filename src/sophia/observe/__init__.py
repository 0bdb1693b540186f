"""The observe room: telemetry, health, SLOs and alerts (issue 25, in progress).

``slo`` judges service-level objectives by the SRE workbook's multi-window, multi-burn-rate rules;
``alerts`` turns what fires into de-duplicated notices with recovery notices, to the log and a
Slack-compatible webhook; ``uptime`` keeps probe results and derives availability per window and
incidents, each probe also an event of the service's SLO; ``monitor`` runs the probes and checks in
``sophia run``; ``drift`` holds the drift tests (KS + PSI, two-proportion z, Jensen-Shannon, a
permutation test on mean embeddings) and ``signals`` applies them to the gateway's ledger.
"""
