"""Sending: the delivery engine (engine.py), SMTP transport (transport.py), capture server."""
