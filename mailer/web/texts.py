"""Every text of the subscriber pages, in Dutch and English, by message key.

Pages are Dutch unless the person's language is English; a test checks both languages have the
same keys. Texts are plain (no markup): templates escape them, and add links around them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LANGUAGES", "TEXTS", "text"]

LANGUAGES = ("nl", "en")

TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "site.name": "GT Gemeentelijke Telecommunicatie",
        "site.tagline": "Nieuwsbrief en regiobijeenkomsten",
        "site.skip": "Naar de inhoud",
        "site.footer": "GT is het gezamenlijke inkoopprogramma voor telecommunicatie van "
        "Nederlandse gemeenten.",
        "lang.other": "English",
        "lang.nl": "Nederlands",
        "lang.en": "Engels (English)",
        "unsub.title": "Afmelden",
        "unsub.intro": "Wilt u geen e-mail meer van ons ontvangen op {email}?",
        "unsub.choose": "Waarvoor wilt u zich afmelden?",
        "unsub.scope.lists": "Alleen voor: {lists}",
        "unsub.scope.all": "Voor alle e-mail van GT (nieuwsbrieven en uitnodigingen)",
        "unsub.button": "Afmelden",
        "unsub.prefs": "Liever zelf kiezen wat u ontvangt?",
        "unsub.prefs.link": "Naar uw voorkeuren",
        "unsub.already": "Dit adres ontvangt deze berichten al niet meer. U hoeft niets te doen.",
        "unsubscribed.title": "U bent afgemeld",
        "unsubscribed.lists": "U ontvangt geen berichten meer over: {lists}.",
        "unsubscribed.all": "U ontvangt geen e-mail meer van GT.",
        "unsubscribed.late": "Was er al een bericht onderweg, dan kan dat nog binnenkomen.",
        "unsubscribed.undo": "Per ongeluk afgemeld? In uw voorkeuren meldt u zich weer aan.",
        "prefs.title": "Uw voorkeuren",
        "prefs.intro": "U ontvangt onze berichten op {email}. Kies hieronder wat u wilt "
        "ontvangen.",
        "prefs.lists": "Onderwerpen",
        "prefs.pending": "wacht op uw bevestiging",
        "prefs.none": "Er zijn geen onderwerpen om uit te kiezen.",
        "prefs.language": "Taal van onze berichten",
        "prefs.save": "Opslaan",
        "prefs.saved": "Uw voorkeuren zijn opgeslagen.",
        "prefs.confirm": "Wij hebben u een e-mail gestuurd: klik op de link daarin om u weer "
                         "aan te melden. Uw andere keuzes zijn opgeslagen.",
        "prefs.stopped": "Wij kunnen geen e-mail meer bezorgen op dit adres, daarom kunt u zich "
        "hier niet opnieuw aanmelden. Klopt dat niet? Neem dan contact met ons op.",
        "prefs.leave.title": "Afmelden voor alles",
        "prefs.leave.text": "U ontvangt dan geen nieuwsbrieven en uitnodigingen meer van GT.",
        "prefs.leave.button": "Afmelden voor alles",
        "prefs.data.title": "Uw gegevens",
        "prefs.data.text": "Vraag een kopie op van alles wat wij over u bewaren: uw gegevens, "
        "uw aanmeldingen en wanneer u toestemming gaf. Wij sturen de kopie naar {email}, zodat "
        "alleen u hem krijgt.",
        "prefs.data.button": "Stuur mij een kopie",
        "prefs.data.sent": "Wij sturen een kopie van uw gegevens naar uw e-mailadres. Die is er "
        "binnen enkele minuten.",
        "sub.title": "Aanmelden: {list}",
        "sub.intro": "Meld u aan en ontvang onze berichten per e-mail.",
        "sub.email": "E-mailadres",
        "sub.name": "Naam",
        "sub.organisation": "Organisatie (bijvoorbeeld uw gemeente)",
        "sub.optional": "niet verplicht",
        "sub.language": "Taal van onze berichten",
        "sub.trap": "Laat dit veld leeg",
        "sub.button": "Aanmelden",
        "sub.privacy": "Wij gebruiken uw gegevens alleen om u deze berichten te sturen. "
        "Afmelden kan altijd, met de link onder elk bericht.",
        "sub.error.email": "Vul een geldig e-mailadres in, bijvoorbeeld naam@gemeente.nl.",
        "sub.error.pow": "Uw browser kon de controle tegen automatische aanmeldingen niet "
                         "afronden. Probeer het nog eens (JavaScript is daarvoor nodig).",
        "sent.title": "Kijk in uw mailbox",
        "sent.text": "Wij hebben een e-mail gestuurd naar {email}. Staat daar een "
        "bevestigingslink in, klik er dan op om uw aanmelding af te ronden. De link is {hours} "
        "uur geldig.",
        "sent.spam": "Niets ontvangen? Kijk ook bij uw ongewenste e-mail.",
        "confirm.title": "Aanmelding bevestigen",
        "confirm.text": "Bevestig dat u onze berichten wilt ontvangen op {email} over: {lists}.",
        "confirm.button": "Ja, ik meld mij aan",
        "confirmed.title": "Uw aanmelding is bevestigd",
        "confirmed.text": "Welkom! U ontvangt voortaan onze berichten over: {lists}.",
        "confirmed.prefs": "Uw voorkeuren bekijken",
        "confirmed.stopped": "Wij kunnen geen e-mail meer bezorgen op dit adres, daarom is uw "
        "aanmelding niet bevestigd. Klopt dat niet? Neem dan contact met ons op.",
        "error.link.title": "Deze link werkt niet",
        "error.link.text": "De link is niet (meer) geldig. Misschien is hij verlopen of niet "
        "helemaal gekopieerd. Gebruik de link uit een recent bericht van ons, of meld u "
        "opnieuw aan.",
        "error.csrf.title": "Het formulier is verlopen",
        "error.csrf.text": "Om u te beschermen nemen wij dit formulier niet aan. Open de pagina "
        "opnieuw en probeer het nog een keer.",
        "error.csrf.retry": "Pagina opnieuw openen",
        "error.rate.title": "Even geduld",
        "error.rate.text": "Er zijn te veel pogingen gedaan. Probeer het over een uur opnieuw.",
        "error.notfound.title": "Pagina niet gevonden",
        "error.notfound.text": "Deze pagina bestaat niet (meer).",
        "error.method.title": "Dat kan hier niet",
        "error.method.text": "Deze pagina kan dat verzoek niet verwerken.",
        "error.server.title": "Er ging iets mis",
        "error.server.text": "Er ging aan onze kant iets mis. Probeer het later opnieuw.",
    },
    "en": {
        "site.name": "GT Gemeentelijke Telecommunicatie",
        "site.tagline": "Newsletter and regional meetings",
        "site.skip": "Skip to content",
        "site.footer": "GT is the joint telecom procurement programme of Dutch municipalities.",
        "lang.other": "Nederlands",
        "lang.nl": "Dutch (Nederlands)",
        "lang.en": "English",
        "unsub.title": "Unsubscribe",
        "unsub.intro": "Would you rather not receive e-mail from us at {email}?",
        "unsub.choose": "What do you want to unsubscribe from?",
        "unsub.scope.lists": "Only: {lists}",
        "unsub.scope.all": "All e-mail from GT (newsletters and invitations)",
        "unsub.button": "Unsubscribe",
        "unsub.prefs": "Would you rather choose what you receive?",
        "unsub.prefs.link": "Go to your preferences",
        "unsub.already": "This address no longer receives these messages. Nothing to do.",
        "unsubscribed.title": "You have been unsubscribed",
        "unsubscribed.lists": "You will no longer receive messages about: {lists}.",
        "unsubscribed.all": "You will no longer receive e-mail from GT.",
        "unsubscribed.late": "If a message was already on its way, it may still arrive.",
        "unsubscribed.undo": "Unsubscribed by mistake? Sign up again in your preferences.",
        "prefs.title": "Your preferences",
        "prefs.intro": "You receive our messages at {email}. Choose below what you want to "
        "receive.",
        "prefs.lists": "Topics",
        "prefs.pending": "awaiting your confirmation",
        "prefs.none": "There are no topics to choose from.",
        "prefs.language": "Language of our messages",
        "prefs.save": "Save",
        "prefs.saved": "Your preferences have been saved.",
        "prefs.confirm": "We have sent you an e-mail: follow the link in it to sign up again. "
                         "Your other choices have been saved.",
        "prefs.stopped": "We can no longer deliver e-mail to this address, so you cannot sign "
        "up again here. If that is wrong, please contact us.",
        "prefs.leave.title": "Unsubscribe from everything",
        "prefs.leave.text": "You will no longer receive newsletters or invitations from GT.",
        "prefs.leave.button": "Unsubscribe from everything",
        "prefs.data.title": "Your data",
        "prefs.data.text": "Ask for a copy of everything we keep about you: your details, your "
        "subscriptions and when you gave consent. We send the copy to {email}, so that only "
        "you receive it.",
        "prefs.data.button": "Send me a copy",
        "prefs.data.sent": "We are sending a copy of your data to your e-mail address. It will "
        "arrive within a few minutes.",
        "sub.title": "Subscribe: {list}",
        "sub.intro": "Sign up to receive our messages by e-mail.",
        "sub.email": "E-mail address",
        "sub.name": "Name",
        "sub.organisation": "Organisation (for example your municipality)",
        "sub.optional": "optional",
        "sub.language": "Language of our messages",
        "sub.trap": "Leave this field empty",
        "sub.button": "Subscribe",
        "sub.privacy": "We use your details only to send you these messages. You can "
        "unsubscribe at any time with the link below every message.",
        "sub.error.email": "Please enter a valid e-mail address, for example name@example.nl.",
        "sub.error.pow": "Your browser could not complete the check against automated sign-ups. "
                         "Please try again (it needs JavaScript).",
        "sent.title": "Check your inbox",
        "sent.text": "We have sent an e-mail to {email}. If it contains a confirmation link, "
        "click it to complete your subscription. The link is valid for {hours} hours.",
        "sent.spam": "Nothing arrived? Please check your junk mail folder too.",
        "confirm.title": "Confirm your subscription",
        "confirm.text": "Please confirm that you want to receive our messages at {email} "
        "about: {lists}.",
        "confirm.button": "Yes, confirm my subscription",
        "confirmed.title": "Your subscription is confirmed",
        "confirmed.text": "Welcome! From now on you will receive our messages about: {lists}.",
        "confirmed.prefs": "View your preferences",
        "confirmed.stopped": "We can no longer deliver e-mail to this address, so your "
        "subscription has not been confirmed. If that is wrong, please contact us.",
        "error.link.title": "This link does not work",
        "error.link.text": "The link is not valid (any more). It may have expired or been "
        "copied incompletely. Please use the link from a recent message of ours, or sign up "
        "again.",
        "error.csrf.title": "The form has expired",
        "error.csrf.text": "To protect you, we did not accept this form. Please open the page "
        "again and try once more.",
        "error.csrf.retry": "Open the page again",
        "error.rate.title": "Please wait",
        "error.rate.text": "There have been too many attempts. Please try again in an hour.",
        "error.notfound.title": "Page not found",
        "error.notfound.text": "This page does not exist (any more).",
        "error.method.title": "Not possible here",
        "error.method.text": "This page cannot handle that request.",
        "error.server.title": "Something went wrong",
        "error.server.text": "Something went wrong on our side. Please try again later.",
    },
}


def text(language: str, key: str, **values: Any) -> str:
    """The text for `key` in `language` (Dutch if unknown), with {placeholders} filled in."""
    catalogue = TEXTS.get(language, TEXTS["nl"])
    message = catalogue[key]
    return message.format(**values) if values else message
