"""Staff accounts of the console: users with a role, passwords, TOTP, set-up links, sessions.

Domain code: no web or CLI imports. The console and `mailer users` reach it through
`mailer.usecases.users`, which also writes the audit trail.
"""
