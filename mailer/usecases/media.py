"""Images for newsletters: uploaded in the console's editor, served by the subscriber pages.

An upload is accepted only when Pillow decodes all of it as PNG, JPEG, GIF or WebP, within
`console.image_max_bytes` and a pixel budget; what is stored is not the upload but a fresh
encoding of the decoded pixels, so metadata (EXIF with GPS, comments, ICC text) and anything
appended to or hidden in the file (an HTML or ZIP polyglot) is gone. SVG is refused: it is a
document that can carry script. The name is random (`media/<32 hex>.<ext>` under the data
folder, 0600 in a 0700 folder); nothing the uploader chose ends up in a path.
"""

from __future__ import annotations

import io
import re
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from mailer import audit
from mailer.audit import Actor
from mailer.errors import MediaError
from mailer.files import private_folder, write_private
from mailer.settings import Settings
from mailer.usecases.users import require

__all__ = ["StoredImage", "store_image", "media_folder", "media_file", "MEDIA_TYPES",
           "NAME_RE", "MAX_PIXELS"]

#: Pillow's format name -> (file extension, Content-Type served).
FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"),
           "GIF": ("gif", "image/gif"), "WEBP": ("webp", "image/webp")}
MEDIA_TYPES = {ext: media_type for ext, media_type in FORMATS.values()}
#: The names we hand out, and the only ones the pages serve.
NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpg|gif|webp)$")
#: Width × height we decode at most: a small file can claim a huge canvas (a "pixel bomb").
MAX_PIXELS = 40_000_000
MAX_FRAMES = 300


@dataclass(frozen=True)
class StoredImage:
    name: str  # e.g. "3f9c…e1.png"
    url: str  # under web.base_url
    width: int
    height: int
    size: int  # bytes stored
    markdown: str  # what the editor inserts


def media_folder(settings: Settings) -> Path:
    return Path(settings.data_dir) / "media"


def media_file(settings: Settings, name: str) -> Path | None:
    """The stored file of a served name, or None for any name we would not have made."""
    if not NAME_RE.match(name):
        return None
    path = media_folder(settings) / name
    return path if path.is_file() else None


def _decode(data: bytes) -> tuple[str, bytes, int, int]:
    """(format, re-encoded bytes, width, height), or MediaError."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    head = data[:512].lstrip().lower()
    if head.startswith((b"<", b"\xef\xbb\xbf<")) or b"<svg" in head:
        raise MediaError("SVG and other documents are not accepted; use PNG, JPEG, GIF or WebP")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as probe:
                kind = probe.format or ""
                probe.verify()  # the whole file's structure and checksums (PNG CRCs)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise MediaError(f"the image is {img.width}×{img.height} pixels; at most "
                                     f"{MAX_PIXELS // 1_000_000} million are accepted")
                frames = [frame.copy() for _n, frame in
                          zip(range(MAX_FRAMES), ImageSequence.Iterator(img), strict=False)]
                duration = img.info.get("duration")
                loop = img.info.get("loop")
        except MediaError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError,
                Image.DecompressionBombWarning, OSError, SyntaxError, ValueError,
                EOFError) as exc:
            raise MediaError("this file is not a PNG, JPEG, GIF or WebP image that can be "
                             f"read ({type(exc).__name__})") from None
    if kind not in FORMATS:
        raise MediaError("only PNG, JPEG, GIF and WebP images are accepted")
    return kind, _encode(kind, frames, duration, loop), frames[0].width, frames[0].height


def _encode(kind: str, frames: Sequence[object], duration: object, loop: object) -> bytes:
    """A fresh file of the decoded pixels, and nothing else (no metadata)."""
    from PIL import Image

    images: list[Image.Image] = []
    for frame in frames:
        assert isinstance(frame, Image.Image)
        frame.info = {}  # so the encoder copies no EXIF, ICC, XMP or text chunk across
        if kind == "JPEG" and frame.mode not in ("RGB", "L"):
            frame = frame.convert("RGB")
        images.append(frame)
    out = io.BytesIO()
    first, rest = images[0], images[1:]
    options: dict[str, object] = {}
    if rest and kind in ("GIF", "WEBP"):
        options = {"save_all": True, "append_images": rest}
        if duration is not None:
            options["duration"] = duration
        if loop is not None:
            options["loop"] = loop
    if kind == "JPEG":
        options["quality"] = 90
    first.save(out, format=kind, **options)
    return out.getvalue()


def store_image(session: Session, settings: Settings, actor: Actor, data: bytes, *,
                filename: str = "", alt: str = "") -> StoredImage:
    """Check, clean and store an uploaded image; audited as `image.upload`."""
    require(actor, "campaigns.edit")
    limit = settings.console.image_max_bytes
    if not data:
        raise MediaError("choose an image file first")
    if len(data) > limit:
        raise MediaError(f"the image is {len(data) // 1024} KB; at most {limit // 1024} KB "
                         "is accepted")
    kind, encoded, width, height = _decode(data)
    ext = FORMATS[kind][0]
    name = f"{secrets.token_hex(16)}.{ext}"
    folder = private_folder(media_folder(settings))
    write_private(folder / name, encoded)
    url = f"{settings.web.base_url.rstrip('/')}/media/{name}"
    description = " ".join(alt.replace("[", "").replace("]", "").split())[:200]
    audit.record(session, actor, "image.upload", ("image", name), None,
                 {"name": name, "format": kind, "width": width, "height": height,
                  "bytes": len(encoded), "uploaded_as": filename[:200]})
    return StoredImage(name=name, url=url, width=width, height=height, size=len(encoded),
                       markdown=f"![{description}]({url})")
