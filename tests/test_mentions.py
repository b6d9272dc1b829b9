"""What erasure counts as a mention of a person in kept raw mail (mailer.kernel.mentions)."""

from __future__ import annotations

import base64

from mailer.kernel.mentions import Needles, mentions

ANNA = Needles.of("anna@gemeente-a.nl", ["Anna de Vries", "Anna"], ["06-12345678"])


def _b64(text: str) -> str:
    return base64.encodebytes(text.encode()).decode()


def test_plain_and_encoded_mentions():
    assert mentions(b"Subject: x\n\nMail for ANNA@Gemeente-A.nl\n", ANNA)
    assert mentions(("Subject: x\nContent-Transfer-Encoding: base64\n\n"
                     + _b64("bel 06 1234 5678")).encode(), ANNA)
    assert mentions(b"Subject: =?utf-8?q?Anna_de=20Vries?=\n\nhallo\n", ANNA)
    forwarded = ("Content-Type: multipart/mixed; boundary=x\n\n--x\n"
                 "Content-Type: message/rfc822\n\nSubject: fw\n"
                 "Content-Transfer-Encoding: quoted-printable\n\nAnna de =\nVries\n--x--\n")
    assert mentions(forwarded.encode(), ANNA)


def test_what_is_not_a_mention():
    # A one-word name would match half the mail; a longer number holding the phone's digits
    # is another number; a stored text beside the raw counts too.
    assert not mentions(b"Subject: x\n\nHallo Anna, bel 0612345678901.\n", ANNA)
    assert mentions(b"Subject: x\n\nnothing\n", ANNA, ("anna@gemeente-a.nl",))
    assert not mentions(None, ANNA)
    assert not mentions(b"anything", Needles.of(""))


def test_garbled_mail_is_searched_as_far_as_it_goes():
    garbled = (b"Subject: =?utf-8?b?!!!?=\nContent-Type: multipart/mixed; boundary=\n"
               b"Content-Transfer-Encoding: base64\n\n\xff\xfe" + b"=" * 50)
    assert mentions(garbled, ANNA) is False
