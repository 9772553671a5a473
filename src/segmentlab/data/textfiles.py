"""Turning the bytes of a text file into UTF-8 for the CSV parser, deciding the encoding per file.

* A byte-order mark names UTF-8, UTF-16 or UTF-32; without one, UTF-16/32 is recognised by its
  NUL bytes, which plain-text files in those encodings have at every second (fourth) position.
* Anything else must be UTF-8. A file that is not valid UTF-8 everywhere keeps its valid lines and
  decodes only the lines holding invalid bytes as Windows-1252 (the Kaggle copy of Online Retail
  is Latin-1, whose pound sign 0xA3 cp1252 reads the same; a UTF-8 export that gained one
  stray byte keeps every other "£" right). The number of such lines is reported, never hidden.

Line endings (``\\n``, ``\\r\\n``, old-Mac ``\\r``) are left as they are: the Arrow CSV reader
accepts all three.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from segmentlab.schema import DataError

#: (mark, codec), longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_SAMPLE = 1 << 12  # bytes looked at for NUL patterns
#: (codec, positions mod 4 of the text bytes of ASCII characters, positions of their NUL bytes)
_WIDE = (("utf-32-le", [0], [1, 2, 3]), ("utf-32-be", [3], [0, 1, 2]),
         ("utf-16-le", [0, 2], [1, 3]), ("utf-16-be", [1, 3], [0, 2]))
_INVALID = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, after "surrogateescape"
#: Latin-1 text to Windows-1252: only 0x80-0x9F differ; the five bytes cp1252 leaves undefined
#: keep their Latin-1 reading, as Windows itself does.
_CP1252 = {i: bytes([i]).decode("cp1252") for i in range(0x80, 0xA0)
           if i not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


@dataclass(frozen=True)
class DecodedText:
    """A text file as UTF-8 bytes, and how it was decoded.

    Attributes
    ----------
    data : pyarrow.Buffer
        The text as UTF-8, without byte-order mark.
    encoding : str
        The file's encoding: ``utf-8``, ``utf-16-le``, ``utf-32-be``, ...
    cp1252_lines : int
        Lines that were not valid UTF-8 and were read as Windows-1252 (UTF-8 files only).
    first_cp1252_line : int or None
        The 1-based line number of the first of them.
    """

    data: pa.Buffer
    encoding: str
    cp1252_lines: int = 0
    first_cp1252_line: int | None = None

    def warning(self, where: str) -> str | None:
        """The one-line warning about lines read as Windows-1252, or None when there were none."""
        if not self.cp1252_lines:
            return None
        lines = "1 line was" if self.cp1252_lines == 1 else f"{self.cp1252_lines:,} lines were"
        return (f"{where}: {lines} not valid UTF-8 and read as Windows-1252 (first: line "
                f"{self.first_cp1252_line:,}); save the file as UTF-8 to silence this")


def decode_text(data: pa.Buffer, where: str) -> DecodedText:
    """Decide the encoding of a text file and return its text as UTF-8.

    Parameters
    ----------
    data : pyarrow.Buffer
        The file's bytes (already decompressed).
    where : str
        The file, as error messages name it.

    Returns
    -------
    DecodedText

    Raises
    ------
    DataError
        When a UTF-16/32 file holds bytes its encoding cannot decode.
    """
    head = data[:_SAMPLE].to_pybytes()
    codec = next((c for mark, c in _BOMS if head.startswith(mark)), None)
    if codec is not None:
        body = data[len(next(m for m, c in _BOMS if c == codec)):]
    else:
        codec, body = _wide_by_nuls(head), data
    if codec not in (None, "utf-8"):
        try:
            text = body.to_pybytes().decode(codec)
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: the file looks like {codec.upper()} text but byte "
                            f"{exc.start:,} cannot be decoded ({exc.reason})") from None
        return DecodedText(pa.py_buffer(text.encode("utf-8")), codec)
    if _valid_utf8(body):
        return DecodedText(body, "utf-8")
    return _repair_lines(body.to_pybytes())


def _wide_by_nuls(head: bytes) -> str | None:
    """UTF-16/32 without a mark: ASCII text in them has NUL bytes at fixed positions."""
    if len(head) < 16 or head.count(0) < len(head) // 4:
        return None
    sample = np.frombuffer(head[: len(head) // 4 * 4], dtype=np.uint8).reshape(-1, 4)
    zero = (sample == 0).mean(axis=0)  # share of NUL bytes at each position mod 4
    for codec, text_at, nul_at in _WIDE:
        if zero[nul_at].min() > 0.9 and zero[text_at].max() < 0.1:
            return codec
    return None


def _valid_utf8(data: pa.Buffer) -> bool:
    """Whether the bytes are UTF-8, checked by Arrow without copying them."""
    offsets = pa.py_buffer(np.array([0, data.size], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, data).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _repair_lines(data: bytes) -> DecodedText:
    """UTF-8 text in which the lines holding invalid bytes are decoded as Windows-1252."""
    text = data.decode("utf-8", errors="surrogateescape")
    pieces, done, lines, first = [], 0, 0, None
    for match in _INVALID.finditer(text):
        at = match.start()
        if at < done:  # in a line already repaired
            continue
        start = max(text.rfind("\n", 0, at), text.rfind("\r", 0, at)) + 1
        ends = [e for e in (text.find("\n", at), text.find("\r", at)) if e >= 0]
        end = min(ends) if ends else len(text)
        line = text[start:end].encode("utf-8", errors="surrogateescape")
        pieces += [text[done:start], line.decode("latin-1").translate(_CP1252)]
        done, lines = end, lines + 1
        if first is None:
            first = text.count("\n", 0, at) + text.count("\r", 0, at) - text.count("\r\n", 0, at) + 1
    pieces.append(text[done:])
    return DecodedText(pa.py_buffer("".join(pieces).encode("utf-8")), "utf-8", lines, first)
