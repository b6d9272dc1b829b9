"""The subscriber pages: unsubscribe, preferences, subscribe with double opt-in, view online.

Serve them with `mailer web` (on their own) or `mailer run` (beside the scheduler); both build
the ASGI app with `mailer.web.app.create_web_app(app)`. Pages need no login: every personal page
is reached by a link carrying a signed, purpose-bound token (mailer.kernel).

Adding pages (the RSVP page does this)
--------------------------------------
Write a module with a function `routes(pages: Pages) -> list[starlette.routing.BaseRoute]` and
name it in `mailer.web.app.ROUTE_MODULES` (`mailer.web.rsvp` is already listed; it is skipped
while the module does not exist). `pages` (mailer.web.pages.Pages) gives what every page needs:

- `pages.unsign(purpose, token, max_age=None, ints=("s",))` -> payload; raises TokenError, which
  the app answers with the friendly "this link does not work" page (400), revealing nothing.
- `pages.language(request, preferred)` -> "nl" or "en" (the person's language, else ?lang=,
  else the browser's); set `request.state.lang` so error pages follow it.
- `await pages.db(fn, *args)` runs `fn(session, *args)` in one transaction off the event loop;
  return plain values, not ORM objects.
- `await pages.form(request)` -> the posted form after its CSRF check (CsrfError -> 403 page).
  Put `<input type="hidden" name="{{ csrf_field }}" value="{{ csrf_token }}">` in each form;
  the token is bound to the page's path, so post the form to the page itself.
- `pages.render(request, "page.html", context, lang=..., status=200, mails=[Mail(...)])`
  renders templates/web/page.html (extend "base.html", fill `title` and `content`, texts via
  `t(key, **values)` from mailer.web.texts) and sends `mails` after the answer.
- `pages.see_other(request, "query")` redirects back to the same page (post/redirect/get).
- `pages.send_all(mails)` sends `mailer.web.mail.Mail`s; use it as a BackgroundTask of a
  redirect (`RedirectResponse(..., background=BackgroundTask(pages.send_all, mails))`).
- `pages.links` (mailer.kernel.links.Links), `pages.settings`, `pages.rate` (database-backed rate
  limits: `pages.rate.hit(session, [Limit(bucket, key, per_hour)])` raises RateLimited -> 429).

Every answer gets the security headers (CSP without scripts, no framing, no referrer, nosniff,
no-store) from mailer.web.app.SecurityHeaders.
"""
