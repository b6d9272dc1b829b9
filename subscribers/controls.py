"""Control characters out of values that come from outside (forms, files, mail, the command line).

ESC, BEL, NUL and their C1 cousins have no place in a name or an organisation: in a terminal they
move the cursor, retitle the window or hide text (`subscribers show` would replay them), and
PostgreSQL cannot store a NUL at all. They are taken out on input; tab and newline are kept only
in fields that are several lines long (a description, a raw message).
"""

from __future__ import annotations

import re

__all__ = ["strip_controls", "CONTROLS"]

#: C0 controls, DEL and C1 controls.
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_controls(text: str, *, multiline: bool = False) -> str:
    """`text` without control characters; with `multiline`, tab, LF and CR (line breaks as
    written, CR LF included) stay."""
    return (_CONTROLS_BUT_LINES if multiline else CONTROLS).sub("", text)
