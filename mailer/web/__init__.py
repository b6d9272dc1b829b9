"""The subscriber pages: unsubscribe, preferences, subscribe with double opt-in, view online.

Serve them with `mailer web` (on their own) or `mailer run` (beside the scheduler); both build
the ASGI app with `App.web_app()` (mailer.web.app.create_web_app). Pages need no login: every
personal page is reached by a link carrying a signed, purpose-bound token (mailer.kernel).

One module per page (unsubscribe, preferences, subscribe, view, rsvp), each giving
`routes(pages)`; `pages` (mailer.web.pages.Pages) holds what they share: templates, language,
signed links, CSRF, rate limits, the database and the mail they send.

Every answer gets the security headers (CSP with our own scripts only, no framing, no referrer,
nosniff, no-store) from mailer.web.headers.SecurityHeaders.
"""
