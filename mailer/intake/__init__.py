"""Intake adapters: mail that arrives for GT Mailer (bounces, calendar replies)."""
