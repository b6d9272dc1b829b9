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
    "signin.password_heading": ("Of met uw wachtwoord", "Or with your password"),
    "oidc.continue.title": ("U bent ingelogd", "You are signed in"),
    "oidc.continue.link": ("Verder naar de redactie", "Continue to the console"),
    "oidc.refused.title": ("Inloggen is niet gelukt", "Signing in did not work"),
    "oidc.refused.back": ("Terug naar inloggen", "Back to sign-in"),
    "oidc.refused.state": (
        "Deze aanmelding is verlopen, al gebruikt of in een andere browser begonnen. Begin "
        "opnieuw op de inlogpagina.",
        "This sign-in has expired, was used already or was started in another browser. Start "
        "again on the sign-in page."),
    "oidc.refused.provider": (
        "De aanmelddienst gaf geen (geldig) antwoord. Probeer het later opnieuw of log in met "
        "uw wachtwoord.",
        "The identity provider gave no (valid) answer. Try again later or sign in with your "
        "password."),
    "oidc.refused.token": (
        "Het antwoord van de aanmelddienst kon niet worden gecontroleerd. Begin opnieuw.",
        "The identity provider's answer could not be verified. Start again."),
    "oidc.refused.norole": (
        "Uw account bij de aanmelddienst hoort bij geen groep die toegang geeft tot de "
        "redactie. Vraag een beheerder u aan de juiste groep toe te voegen.",
        "Your account at the identity provider is in no group that gives access to the "
        "console. Ask an administrator to add you to the right group."),
    "oidc.refused.overage": (
        "U bent lid van zoveel groepen dat de aanmelddienst ze niet meestuurt. Vraag een "
        "beheerder de groepen aan de app toe te wijzen of app-rollen te gebruiken.",
        "You are in so many groups that the identity provider does not send them. Ask an "
        "administrator to assign the groups to the app or to use app roles."),
    "oidc.refused.noemail": (
        "De aanmelddienst gaf geen bevestigd e-mailadres, dus we weten niet welk account van "
        "u is. Vraag een beheerder om hulp.",
        "The identity provider gave no verified e-mail address, so we cannot tell which "
        "account is yours. Ask an administrator for help."),
    "oidc.refused.noaccount": (
        "Er is geen account voor u. Vraag een beheerder er een aan te maken.",
        "There is no account for you. Ask an administrator to add one."),
    "oidc.refused.linked": (
        "Het account met dit e-mailadres is al gekoppeld aan een andere identiteit. Vraag een "
        "beheerder om hulp.",
        "The account with this address is linked to another identity already. Ask an "
        "administrator for help."),
    "oidc.refused.disabled": ("Dit account is uitgeschakeld.", "This account is disabled."),
    "oidc.refused.totp": (
        "Beheerders hebben hier ook een code uit een authenticator-app nodig, en voor uw "
        "account is die nog niet ingesteld. Vraag een beheerder om een nieuwe instellink.",
        "Administrators also need a code from an authenticator app here, and your account has "
        "none set up yet. Ask an administrator for a new set-up link."),
    "oidc.refused.rate": ("Te veel pogingen vanaf dit adres. Probeer het over een kwartier "
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
    "campaign.ask": ("Goedkeuring vragen voor versie {version}",
                     "Ask for approval of version {version}"),
    "campaign.asked": ("Goedkeuring", "Approval"),
    "campaign.asked_by": ("gevraagd door {who} (versie {version})",
                          "asked by {who} (version {version})"),
    "campaigns.asked": ("goedkeuring gevraagd", "approval asked"),
    "campaign.duplicate": ("Kopie maken", "Duplicate"),
    "editor.image": ("Afbeelding", "Image"),
    "editor.image.hint": ("PNG, JPEG, GIF of WebP, hoogstens {kb} KB. De afbeelding komt op "
                          "de plek van de cursor in de tekst.",
                          "PNG, JPEG, GIF or WebP, at most {kb} KB. The image goes where the "
                          "cursor is in the text."),
    "editor.image.file": ("Bestand", "File"),
    "editor.image.alt": ("Beschrijving (voor wie de afbeelding niet ziet)",
                         "Description (for those who cannot see the image)"),
    "editor.image.button": ("Afbeelding uploaden", "Upload image"),
    "editor.image.done": ("De afbeelding staat in de tekst.", "The image is in the text."),
    "editor.job_titles": ("Functies, met komma's (leeg: alle)",
                          "Job titles, comma-separated (none: all)"),
    "editor.attributes": ("Kenmerken (leeg: alle)", "Attributes (none: all)"),
    "editor.attributes.hint": ("Eén per regel, als sleutel=waarde, bijvoorbeeld sector=ICT.",
                               "One per line, as key=value, for example sector=ICT."),
    "editor.sample": ("Wie erin zitten (de eersten)", "Who is in it (the first few)"),
    "editor.sample.none": ("Niemand.", "Nobody."),
    "editor.segments.use": ("Opgeslagen doelgroep gebruiken:", "Use a saved audience:"),
    "editor.segment.name": ("Naam om deze doelgroep onder op te slaan",
                            "Name to save this audience under"),
    "editor.segment.save": ("Doelgroep opslaan", "Save audience"),
    "segment.saved": ("De doelgroep is opgeslagen; `mailer campaigns create --segment` kan "
                      "hem ook gebruiken.",
                      "The audience is saved; `mailer campaigns create --segment` can use it "
                      "too."),
    "image.title": ("Afbeelding geüpload", "Image uploaded"),
    "image.copy": ("Zet deze regel in de tekst van de nieuwsbrief:",
                   "Put this line in the newsletter's text:"),
    "image.back": ("Terug naar de nieuwsbrieven", "Back to the newsletters"),
    "check.title": ("Controles voor verzending", "Pre-flight checks"),
    "check.run": ("Controles uitvoeren", "Run the checks"),
    "check.back": ("Terug naar de nieuwsbrief", "Back to the newsletter"),
    "check.passed": ("Geen problemen gevonden.", "No problems found."),
    "check.failed": ("Er is iets mis: los het op voor u goedkeurt.",
                     "Something is wrong: fix it before approving."),
    "check.status.ok": ("In orde:", "OK:"),
    "check.status.fail": ("Probleem:", "Problem:"),
    "check.status.unknown": ("Kon niet controleren:", "Could not check:"),
    "check.render": ("alle varianten worden opgemaakt", "every variant renders"),
    "check.size": ("berichtgrootte onder 100 KB", "message size under 100 KB"),
    "check.unsubscribe": ("afmeldkoppen aanwezig", "unsubscribe headers present"),
    "check.dkim": ("DKIM-ondertekening", "DKIM signing"),
    "check.audience": ("er zijn ontvangers", "the audience is not empty"),
    "check.links": ("links zijn https en werken", "links are https and answer"),
    "check.relay": ("mailserver bereikbaar", "relay reachable"),
    "check.dns": ("SPF, DKIM en DMARC in DNS", "SPF, DKIM and DMARC in DNS"),
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

TEXTS: dict[str, dict[str, str]] = {
    "nl": {k: v[0] for k, v in _PAIRS.items()},
    "en": {k: v[1] for k, v in _PAIRS.items()},
}


def text(lang: str, key: str, **values: Any) -> str:
    template = TEXTS.get(lang, TEXTS["nl"])[key]
    return template.format(**values)
