"""``meshfed drill``: the drill CLI (plan, run, status, halt, freeze, unfreeze) and reports.

A client of the drill controller: it talks to the home cluster's apiserver (Drill objects,
the freeze ConfigMap) and to the telemetry store's HTTP API (golden signals, traces), never
to the controller itself. ``signals``, ``report`` and ``report_html`` are pure.
"""
