"""The application layer: what a person can do, as plain functions the CLI and console call.

Each function takes its dependencies (database session, settings, actor) as arguments, checks
the actor may do it, does it through the domain, and writes the audit trail in the same
transaction.
"""
