"""Bounces and complaints: intake, parsing, classification, and the policy that stops mailing
dead addresses. Domain modules (models, queries, parse, classify, policy, service) never import
the intake adapters (intake, receiver, imap); the adapters call `service.ingest`.
"""
