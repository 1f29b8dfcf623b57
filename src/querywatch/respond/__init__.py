"""Responses to an incident: alerts, the guarded rollback, runbook steps and recovery checks.

Alerts: ``alerts`` (what an alert says), ``sinks`` (where it goes), ``routing`` (CODEOWNERS),
``notifier`` (dedup and re-notify), ``setup`` (the sinks as configured).

Acting: ``responder`` decides when (the monitor, the CLI and the API call it) and wires the parts:
``rollback`` (the guarded rollback: guards, evidence re-check, claim, run, refusals), ``guards``
(each guard and the state it reads), ``runbook`` (named steps, on demand or after a rollback),
``recovery`` (did the rollback help?), ``timeline`` (what each writes on the incident timeline,
and the response alerts), ``actions`` (running a command, webhook or callable), ``egress`` (where
webhooks may go), ``settings`` (the rollback settings and action as configured). ``cli`` holds the
``rollback`` and ``runbook`` commands.
"""
