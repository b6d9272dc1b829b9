"""Bounce and reply intake adapters: the SMTP/LMTP receiver, the IMAP poller, stored files.

Each hands raw messages to `mailer.bounces.service.ingest`; the bounce domain never imports them.
"""
