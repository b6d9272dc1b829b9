"""People, lists, subscriptions, consent and suppression: the subscriber database.

Public API: `subscribers.service` (what can be done) and `subscribers.queries.audience_select`
(who may be mailed). The package knows nothing of mail, the CLI or the web.
"""
