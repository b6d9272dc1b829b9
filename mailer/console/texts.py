"""Every text of the staff console, Dutch first, English second, by key.

A test checks that both languages have the same keys. Texts are plain: templates escape them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LANGUAGES", "TEXTS", "text"]

LANGUAGES = ("nl", "en")

_STATUS = {
    "draft": ("concept", "draft"), "scheduled": ("gepland", "scheduled"),
    "running": ("wordt verstuurd", "sending"), "paused": ("gepauzeerd", "paused"),
    "finished": ("verstuurd", "sent"), "cancelled": ("geannuleerd", "cancelled"),
    "missed": ("gemist", "missed"),
}

_PAIRS: dict[str, tuple[str, str]] = {
    "site.name": ("GT Mailer · redactie", "GT Mailer · staff"),
    "site.skip": ("Naar de inhoud", "Skip to content"),
    "lang.other": ("English", "Nederlands"),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "nav.label": ("Hoofdmenu", "Main menu"),
    "nav.dashboard": ("Overzicht", "Dashboard"),
    "nav.campaigns": ("Nieuwsbrieven", "Newsletters"),
    "nav.users": ("Gebruikers", "Users"),
    "nav.audit": ("Logboek", "Audit trail"),
    "nav.account": ("Mijn account", "My account"),
    "nav.signout": ("Afmelden", "Sign out"),
    "role.viewer": ("lezer", "viewer"),
    "role.editor": ("redacteur", "editor"),
    "role.approver": ("fiatteur", "approver"),
    "role.admin": ("beheerder", "administrator"),
    "signin.title": ("Inloggen", "Sign in"),
    "signin.email": ("E-mailadres", "E-mail address"),
    "signin.password": ("Wachtwoord", "Password"),
    "signin.button": ("Inloggen", "Sign in"),
    "signin.setup_done": ("Uw account is klaar. Log in met uw nieuwe wachtwoord.",
                          "Your account is ready. Sign in with your new password."),
    "signin.error.signin": (
        "Het e-mailadres of wachtwoord klopt niet, of het account is tijdelijk geblokkeerd "
        "na te veel pogingen.",
        "The address or password is wrong, or the account is locked for a while after too "
        "many attempts."),
    "signin.error.rate": ("Te veel pogingen vanaf dit adres. Probeer het over een kwartier "
                          "opnieuw.",
                          "Too many attempts from this address. Try again in 15 minutes."),
    "code.title": ("Code uit uw app", "Code from your app"),
    "code.intro": ("Vul de zescijferige code in uit uw authenticator-app.",
                   "Enter the six-digit code from your authenticator app."),
    "code.label": ("Code", "Code"),
    "code.button": ("Bevestigen", "Confirm"),
    "code.error.code": ("Deze code klopt niet (of is al gebruikt).",
                        "This code is wrong (or was used already)."),
    "code.error.rate": ("Te veel pogingen. Probeer het over een kwartier opnieuw.",
                        "Too many attempts. Try again in 15 minutes."),
    "setup.title": ("Account instellen", "Set up your account"),
    "setup.intro": ("Account voor {email} ({role}). Kies een wachtwoord.",
                    "Account for {email} ({role}). Choose a password."),
    "setup.password": ("Nieuw wachtwoord", "New password"),
    "setup.password.hint": ("Minstens {n} tekens. Een zin van een paar woorden werkt goed.",
                            "At least {n} characters. A sentence of a few words works well."),
    "setup.password2": ("Herhaal het wachtwoord", "Repeat the password"),
    "setup.error.repeat": ("De twee wachtwoorden zijn niet gelijk.",
                           "The two passwords differ."),
    "setup.totp": ("Tweede stap: authenticator-app", "Second step: authenticator app"),
    "setup.totp.required": (
        "Voor beheerders verplicht. Scan de code met uw app (bijvoorbeeld Microsoft "
        "Authenticator) en vul de zes cijfers in.",
        "Required for administrators. Scan the code with your app (for instance Microsoft "
        "Authenticator) and enter the six digits."),
    "setup.totp.optional": (
        "Aangeraden. Scan de code met uw app en vul de zes cijfers in; laat het veld leeg om "
        "dit over te slaan.",
        "Recommended. Scan the code with your app and enter the six digits; leave the field "
        "empty to skip this."),
    "setup.totp.qr": ("QR-code voor uw authenticator-app", "QR code for your authenticator app"),
    "setup.totp.key": ("Of typ deze sleutel over:", "Or type in this key:"),
    "setup.totp.code": ("Code uit de app", "Code from the app"),
    "setup.button": ("Account opslaan", "Save account"),
    "dashboard.title": ("Overzicht", "Dashboard"),
    "dashboard.hello": ("Welkom, {name} ({role}).", "Welcome, {name} ({role})."),
    "dashboard.running": ("Nu bezig", "Running now"),
    "dashboard.next": ("Gepland", "Scheduled next"),
    "dashboard.none": ("Niets.", "Nothing."),
    # -- dashboard, calendar, live status (issue 14) --
    "dashboard.alerts": ("Meldingen", "Alerts"),
    "dashboard.no_alerts": ("Geen meldingen.", "No alerts."),
    "dashboard.progress": ("{sent} van {total} verstuurd", "{sent} of {total} sent"),
    "dashboard.calendar": ("Naar de kalender", "Open the calendar"),
    "dashboard.figures": ("De laatste {days} dagen", "The last {days} days"),
    "dashboard.figures.hint": (
        "Bounces: {hard} hard, {soft} zacht. Verstuurd is wat de mailserver aannam; "
        "aanmeldingen zijn bevestigde aanmeldingen via het webformulier. We meten geen "
        "openingen of kliks: er zitten geen trackingpixels in onze mail.",
        "Bounces: {hard} hard, {soft} soft. Sent is what the relay accepted; sign-ups are "
        "confirmed sign-ups through the web form. We measure no opens or clicks: our mail "
        "carries no tracking pixels."),
    "dashboard.tz": ("Tijden in {tz}.", "Times in {tz}."),
    "figure.sent": ("Verstuurd", "Sent"),
    "figure.bounced": ("Gebouncet", "Bounced"),
    "figure.complaints": ("Klachten (spam)", "Complaints (spam)"),
    "figure.unsubscribes": ("Afmeldingen", "Unsubscribes"),
    "figure.signups": ("Aanmeldingen", "Sign-ups"),
    "alert.paused": ("gepauzeerd: {reason}", "paused: {reason}"),
    "alert.outage": ("de mailserver is onbereikbaar sinds {since}; nieuwe poging om {again}",
                     "the relay cannot be reached since {since}; next try at {again}"),
    "alert.missed": ("gemist: gepland voor {at}, toen draaide de dienst niet",
                     "missed: scheduled for {at}, when the service was not running"),
    "alert.bounces": ("hard-bounces {hard}% (grens {hard_limit}%), klachten {complaints}% "
                      "(grens {complaint_limit}%)",
                      "hard bounces {hard}% (limit {hard_limit}%), complaints {complaints}% "
                      "(limit {complaint_limit}%)"),
    "alert.domain": ("verzending naar {domain} is gepauzeerd ({reason}) sinds {since}",
                     "delivery to {domain} is paused ({reason}) since {since}"),
    "nav.calendar": ("Kalender", "Calendar"),
    "calendar.title": ("Kalender", "Calendar"),
    "calendar.months": ("Maanden", "Months"),
    "calendar.previous": ("← {month}", "← {month}"),
    "calendar.next": ("{month} →", "{month} →"),
    "calendar.hint": ("Geplande en verstuurde nieuwsbrieven en bijeenkomsten, tijden in {tz}; "
                      "{count} deze maand.",
                      "Scheduled and sent newsletters and meetings, times in {tz}; "
                      "{count} this month."),
    "calendar.meeting": ("Bijeenkomst", "Meeting"),
    "calendar.cancelled": ("afgelast", "cancelled"),
    "pages.label": ("Pagina's", "Pages"),
    "pages.previous": ("← Nieuwer", "← Newer"),
    "pages.next": ("Ouder →", "Older →"),
    "pages.of": ("Pagina {page} van {pages} ({total} in totaal)",
                 "Page {page} of {pages} ({total} in all)"),
    "delivery.sending": ("Onderweg", "In flight"),
    "delivery.unsubscribed": ("Afgemeld via deze mail", "Unsubscribed through this mail"),
    "status.outage": ("Mailserver", "Relay"),
    "status.outage.text": ("onbereikbaar sinds {since}; nieuwe poging om {again}",
                           "unreachable since {since}; next try at {again}"),
    "status.started": ("Begonnen", "Started"),
    "status.finished": ("Klaar", "Finished"),
    "status.eta": ("Verwacht klaar", "Expected to finish"),
    "status.progress": ("{done} van {total} afgehandeld ({percent}%)",
                        "{done} of {total} done ({percent}%)"),
    "status.alerts": ("Let op", "Attention"),
    "status.bounces": ("Bounces: {hard} hard, {soft} zacht; {complaints} klachten.",
                       "Bounces: {hard} hard, {soft} soft; {complaints} complaints."),
    "chart.sent.60": ("Verstuurd per minuut", "Sent per minute"),
    "chart.sent.3600": ("Verstuurd per uur", "Sent per hour"),
    "chart.sent.86400": ("Verstuurd per dag", "Sent per day"),
    "chart.bounces.60": ("Bounces per minuut", "Bounces per minute"),
    "chart.bounces.3600": ("Bounces per uur", "Bounces per hour"),
    "chart.bounces.86400": ("Bounces per dag", "Bounces per day"),
    "chart.desc": ("{total} in totaal; het meest: {peak} om {at}.",
                   "{total} in all; most: {peak} at {at}."),
    "chart.table": ("Als tabel", "As a table"),
    "chart.when": ("Vanaf ({tz})", "From ({tz})"),
    "chart.count": ("Aantal", "Count"),
    "chart.empty": ("Nog niets.", "Nothing yet."),
    "account.title": ("Mijn account", "My account"),
    "account.email": ("E-mailadres", "E-mail address"),
    "account.role": ("Rol", "Role"),
    "account.everywhere": ("Overal afmelden", "Sign out everywhere"),
    "account.everywhere.text": (
        "Sluit al uw sessies, ook op andere computers en telefoons.",
        "Ends all your sessions, also on other computers and phones."),
    "account.everywhere.button": ("Overal afmelden", "Sign out everywhere"),
    "campaigns.title": ("Nieuwsbrieven", "Newsletters"),
    "campaigns.subject": ("Onderwerp", "Subject"),
    "campaigns.status": ("Status", "Status"),
    "campaigns.scheduled": ("Gepland voor", "Scheduled for"),
    "campaigns.sent": ("Verstuurd", "Sent"),
    "campaigns.none": ("Nog geen nieuwsbrieven.", "No newsletters yet."),
    "campaign.recipients": ("Ontvangers", "Recipients"),
    "delivery.queued": ("In de wachtrij", "Queued"),
    "delivery.sent": ("Verstuurd", "Sent"),
    "delivery.deferred": ("Uitgesteld", "Deferred"),
    "delivery.failed": ("Mislukt", "Failed"),
    "delivery.bounced": ("Gebouncet", "Bounced"),
    "delivery.skipped": ("Overgeslagen", "Skipped"),
    "users.title": ("Gebruikers", "Users"),
    "users.email": ("E-mailadres", "E-mail address"),
    "users.name": ("Naam", "Name"),
    "users.role": ("Rol", "Role"),
    "users.status": ("Status", "Status"),
    "users.status.active": ("actief", "active"),
    "users.status.disabled": ("uitgeschakeld", "disabled"),
    "users.status.pending": ("nog niet ingesteld", "not set up yet"),
    "users.totp": ("Tweede stap", "Second factor"),
    "users.actions": ("Acties", "Actions"),
    "users.disable": ("Uitschakelen", "Disable"),
    "users.enable": ("Inschakelen", "Enable"),
    "users.reset": ("Opnieuw instellen", "Reset"),
    "users.add": ("Gebruiker toevoegen", "Add a user"),
    "users.add.button": ("Toevoegen", "Add"),
    "users.link": ("Geef deze eenmalige link aan {email}; hij werkt één keer:",
                   "Give this one-time link to {email}; it works once:"),
    "users.done": ("Gedaan voor {email}.", "Done for {email}."),
    "audit.title": ("Logboek", "Audit trail"),
    "audit.when": ("Wanneer", "When"),
    "audit.actor": ("Wie", "Who"),
    "audit.action": ("Wat", "What"),
    "audit.object": ("Object", "Object"),
    "audit.origin": ("Vanaf", "From"),
    "audit.change": ("Nieuwe waarde", "New value"),
    "audit.filter": ("Filteren", "Filter"),
    "audit.export": ("Exporteren (CSV)", "Export (CSV)"),
    "campaigns.new": ("Nieuwe nieuwsbrief", "New newsletter"),
    "language.nl": ("Nederlands", "Dutch"),
    "language.en": ("Engels", "English"),
    "editor.title.new": ("Nieuwe nieuwsbrief", "New newsletter"),
    "editor.title.edit": ("Nieuwsbrief bewerken", "Edit newsletter"),
    "editor.subject": ("Onderwerp", "Subject"),
    "editor.preheader": ("Voorregel", "Preheader"),
    "editor.preheader.hint": ("Korte tekst die mailprogramma's naast het onderwerp tonen.",
                              "Short text mail programs show next to the subject."),
    "editor.body": ("Tekst (Markdown)", "Text (Markdown)"),
    "editor.body.hint": (
        "Markdown met plaatshouders zoals {{{{ subscriber.name }}}}; dezelfde controles als "
        "mailer campaigns create.",
        "Markdown with placeholders such as {{{{ subscriber.name }}}}; the same checks as "
        "mailer campaigns create."),
    "editor.toolbar": ("Opmaak", "Formatting"),
    "editor.bold": ("Vet", "Bold"),
    "editor.italic": ("Cursief", "Italic"),
    "editor.heading": ("Kop", "Heading"),
    "editor.link": ("Link", "Link"),
    "editor.list": ("Opsomming", "List"),
    "editor.audience": ("Ontvangers", "Audience"),
    "editor.lists": ("Lijsten", "Lists"),
    "editor.regions": ("Regio's (leeg: alle)", "Regions (none: all)"),
    "editor.languages": ("Talen (leeg: alle)", "Languages (none: all)"),
    "editor.organisations": ("Organisaties, met komma's (leeg: alle)",
                             "Organisations, comma-separated (empty: all)"),
    "editor.count": ("Aantal ontvangers nu:", "Recipients now:"),
    "editor.save": ("Concept opslaan", "Save draft"),
    "editor.preview": ("Voorbeeld", "Preview"),
    "editor.preview.nl": ("Voorbeeld voor een Nederlandse ontvanger",
                          "Preview for a Dutch recipient"),
    "editor.preview.en": ("Voorbeeld voor een Engelse ontvanger",
                          "Preview for an English recipient"),
    "editor.width": ("Breedte", "Width"),
    "editor.width.phone": ("Telefoon", "Phone"),
    "editor.width.desktop": ("Computer", "Desktop"),
    "campaign.state": ("Verzending", "Delivery"),
    "campaign.rate": ("Snelheid", "Rate"),
    "campaign.progress": ("Voortgang", "Progress"),
    "campaign.who": ("Wie", "Who"),
    "campaign.version": ("Versie", "Version"),
    "campaign.author": ("Auteur", "Author"),
    "campaign.editor": ("Laatst bewerkt door", "Last edited by"),
    "campaign.approver": ("Goedgekeurd door", "Approved by"),
    "campaign.not_approved": ("nog niet goedgekeurd", "not approved yet"),
    "campaign.edit": ("Bewerken", "Edit"),
    "campaign.test": ("Testbericht", "Test message"),
    "campaign.test.to": ("Naar", "To"),
    "campaign.test.hint": (
        "Adressen van abonnees, met komma's (hoogstens 10): elk bericht is voor die persoon "
        "gemaakt, zodat de links werken.",
        "Subscribers' addresses, separated by commas (at most 10): each copy is made for that "
        "person, so its links work."),
    "campaign.test.button": ("Test versturen", "Send test"),
    "test.sent": ("Het testbericht is verstuurd.", "The test message was sent."),
    "test.none": ("Vul minstens één adres in.", "Enter at least one address."),
    "campaign.actions": ("Goedkeuren en versturen", "Approve and send"),
    "campaign.approve": ("Versie {version} goedkeuren", "Approve version {version}"),
    "campaign.at": ("Datum en tijd ({tz})", "Date and time ({tz})"),
    "campaign.schedule": ("Inplannen", "Schedule"),
    "campaign.send": ("Nu versturen", "Send now"),
    "campaign.pause": ("Pauzeren", "Pause"),
    "campaign.resume": ("Hervatten", "Resume"),
    "campaign.cancel": ("Annuleren", "Cancel"),
    "campaign.ask_approval": (
        "Klaar? Vraag een fiatteur om deze versie goed te keuren en in te plannen.",
        "Ready? Ask an approver to approve this version and schedule it."),
    "error.back": ("Terug naar het begin", "Back to the start"),
    "error.signin.title": ("Log eerst in", "Please sign in"),
    "error.signin.text": ("Deze pagina is alleen voor ingelogde medewerkers.",
                          "This page is for signed-in staff only."),
    "error.forbidden.title": ("Geen toegang", "Not allowed"),
    "error.forbidden.text": ("Uw rol geeft geen toegang tot deze pagina of actie.",
                             "Your role does not allow this page or action."),
    "error.csrf.title": ("Formulier verlopen", "Form expired"),
    "error.csrf.text": ("Het formulier kon niet worden gecontroleerd. Laad de pagina opnieuw "
                        "en probeer het nog eens.",
                        "The form could not be checked. Reload the page and try again."),
    "error.setup.title": ("Deze link werkt niet", "This link does not work"),
    "error.setup.text": ("De link is al gebruikt, verlopen of vervangen. Vraag een beheerder "
                         "om een nieuwe.",
                         "The link was used, has expired or was replaced. Ask an "
                         "administrator for a new one."),
    "error.notfound.title": ("Niet gevonden", "Not found"),
    "error.notfound.text": ("Deze pagina bestaat niet.", "This page does not exist."),
    "error.method.title": ("Niet mogelijk", "Not possible"),
    "error.method.text": ("Dit kan op deze pagina niet.", "This cannot be done on this page."),
    "error.server.title": ("Er ging iets mis", "Something went wrong"),
    "error.server.text": ("Probeer het later opnieuw; de fout is vastgelegd.",
                          "Please try again later; the error was logged."),
}
_PAIRS.update({f"status.{k}": v for k, v in _STATUS.items()})
_MONTHS_NL = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
              "september", "oktober", "november", "december")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
_DAYS_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_PAIRS.update({f"month.{i}": (nl, en)
               for i, (nl, en) in enumerate(zip(_MONTHS_NL, _MONTHS_EN, strict=True), 1)})
_PAIRS.update({f"weekday.{i}": (nl, en)
               for i, (nl, en) in enumerate(zip(_DAYS_NL, _DAYS_EN, strict=True), 1)})
_PAIRS.update({f"weekday.short.{i}": (nl[:2], en[:3])
               for i, (nl, en) in enumerate(zip(_DAYS_NL, _DAYS_EN, strict=True), 1)})

TEXTS: dict[str, dict[str, str]] = {
    "nl": {k: v[0] for k, v in _PAIRS.items()},
    "en": {k: v[1] for k, v in _PAIRS.items()},
}


def text(lang: str, key: str, **values: Any) -> str:
    template = TEXTS.get(lang, TEXTS["nl"])[key]
    return template.format(**values)
