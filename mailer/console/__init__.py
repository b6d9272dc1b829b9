"""The staff console: a Starlette app for the people who write and send the mail.

Separate from the subscriber pages (mailer.web): its own listener (`console.host`/`port`,
loopback by default), templates (templates/console/), static files (mailer/console/static/,
with htmx vendored and pinned) and sessions. Every route is a `ConsoleRoute` that names the
permission it needs (mailer.accounts.roles); the app refuses to start with a route that does
not. Pages call the use cases (mailer.usecases) and add no rules of their own.
"""
