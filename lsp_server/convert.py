"""All conversions between LSP types and the engine's types live here."""

from __future__ import annotations

from lsprotocol import types

from analysis.document import Document, Encoding


def lsp_range_to_bytes(
    doc: Document, rng: types.Range, encoding: Encoding
) -> tuple[int, int, bool]:
    """Byte span of an LSP range and whether any end was clamped into the document."""
    start, c1 = doc.offset_at(rng.start.line, rng.start.character, encoding)
    end, c2 = doc.offset_at(rng.end.line, rng.end.character, encoding)
    return min(start, end), max(start, end), c1 or c2


def offset_to_position(doc: Document, offset: int, encoding: Encoding) -> types.Position:
    """An LSP position for a byte offset."""
    pos = doc.position_at(offset, encoding)
    return types.Position(line=pos.line, character=pos.character)


def bytes_to_lsp_range(doc: Document, start: int, end: int, encoding: Encoding) -> types.Range:
    """An LSP range for a byte span."""
    return types.Range(
        start=offset_to_position(doc, start, encoding),
        end=offset_to_position(doc, end, encoding),
    )
