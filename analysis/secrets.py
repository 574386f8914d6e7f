"""Keep secrets out of prompts: secret-looking files are excluded, secret-looking lines blanked.

Two layers. A file whose name looks like a secret store (`.env*`, `*.pem`, `*.key`, `id_rsa*`,
credentials files, ...) or that matches a user exclude glob never contributes text. In every other
text that goes to a model, a line that matches a secret pattern (private key blocks, cloud access
keys, service tokens, quoted passwords) is replaced by its indentation alone, so line structure and
positions around it survive but the secret does not.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePath

import pathspec

# Matched against the file name (case-insensitive).
SECRET_FILE_NAMES: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.asc", "*.gpg",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "credentials", "credentials.*", "*-credentials.json", "*_credentials.json",
    "service-account*.json", "client_secret*.json",
    ".netrc", "_netrc", ".pgpass", ".htpasswd", ".npmrc", ".pypirc", ".git-credentials",
    ".dockercfg", "secrets.yml", "secrets.yaml", "secrets.json", "*.tfvars", "*.tfstate",
)
# Matched against the path (directories that only hold secrets).
SECRET_DIRS: tuple[str, ...] = (".ssh", ".gnupg", ".aws", ".docker")

# (name, regex, literals): a line is searched with the regex only where one of the literals
# occurs in it (case-insensitively for lower-case literals), so scanning a prompt's worth of code
# costs a few substring searches rather than a slow regex pass per pattern.
_PATTERNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("aws access key id", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
     ("AKIA", "ASIA", "ABIA", "ACCA")),
    ("aws secret key", r"(?i:aws).{0,20}(?i:secret|private).{0,20}[:=]\s*['\"]?[A-Za-z0-9/+=]{40}",
     ("aws",)),
    ("github token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    ("gitlab token", r"\bglpat-[A-Za-z0-9_\-]{20,}", ("glpat-",)),
    ("slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/T\w+/B\w+/\w+",
     ("xox", "hooks.slack.com")),
    ("google api key", r"\bAIza[0-9A-Za-z_\-]{35}", ("AIza",)),
    ("api secret key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}", ("sk-",)),
    ("stripe key", r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}", ("k_live_", "k_test_")),
    ("hugging face token", r"\bhf_[A-Za-z0-9]{30,}", ("hf_",)),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}", ("npm_",)),
    ("json web token", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
     ("eyJ",)),
    ("azure account key", r"AccountKey=[A-Za-z0-9+/=]{40,}", ("AccountKey=",)),
    ("password in url", r"\b[a-z][a-z0-9+.-]{1,20}://[^/\s:@'\"]{1,64}:[^/\s:@'\"]{3,}@[\w.-]+",
     ("://",)),
    ("assigned secret", r"(?i:\b(?:password|passwd|pwd|secret|secret_?key|api[_-]?key|"
                        r"access[_-]?token|auth[_-]?token|client[_-]?secret|private[_-]?key))"
                        r"\b['\"]?\s*[:=]\s*[rbfu]?['\"][^'\"\s]{8,}['\"]",
     ("pass", "pwd", "secret", "key", "token")),
)
_COMPILED = tuple((re.compile(regex), literals) for _, regex, literals in _PATTERNS)
_KEY_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
# A bare line of base64, as inside a key block whose BEGIN line was cut off.
_BASE64_LINE = re.compile(r"[ \t]*[A-Za-z0-9+/]{60,}={0,2}[ \t]*")


@dataclass(frozen=True, slots=True)
class Redacted:
    """Text with secret lines blanked, and how many lines were blanked."""

    text: str
    lines: int


class SecretFilter:
    """Decides which files may reach a model and blanks secret lines in the text of the rest."""

    __slots__ = ("_spec", "excludes")

    def __init__(self, excludes: Iterable[str] = ()) -> None:
        self.excludes = tuple(excludes)
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.excludes) if self.excludes else None

    def is_excluded(self, path: str | PurePath, root: str | PurePath | None = None) -> bool:
        """True for a secret-looking file or one matching a user exclude glob."""
        p = PurePath(path)
        if is_secret_file(p):
            return True
        if self._spec is None:
            return False
        rel = p
        if root is not None:
            try:
                rel = p.relative_to(root)
            except ValueError:
                rel = p
        return self._spec.match_file(rel.as_posix()) or self._spec.match_file(p.name)

    def redact(self, text: str) -> Redacted:
        """The text with every line holding a secret replaced by its indentation."""
        return redact(text)


def is_secret_file(path: str | PurePath) -> bool:
    """True when the file's name or folder says it holds secrets."""
    p = PurePath(path)
    name = p.name.lower()
    if any(fnmatchcase(name, pattern) for pattern in SECRET_FILE_NAMES):
        return True
    return any(part in SECRET_DIRS for part in p.parts[:-1])


def find_secret_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of whole lines (without their breaks) that hold secrets, merged."""
    spans: list[tuple[int, int]] = []
    lowered = text.lower() if text.isascii() else None
    for regex, literals in _COMPILED:
        for literal in literals:
            ci = literal.islower()
            hay = text if not ci else lowered
            if hay is None:  # non-ASCII text: lower() may shift indexes; scan line by line
                _scan_lines(text, regex, literal, spans)
                continue
            at = hay.find(literal)
            while at != -1:
                start, end = _line_span(text, at, at)
                if regex.search(text, start, end):
                    spans.append((start, end))
                at = hay.find(literal, end)
    at = text.find("-----BEGIN")
    while at != -1:
        begin = _KEY_BEGIN.match(text, at)
        end = at + 10
        if begin is not None:
            close = _KEY_END.search(text, begin.end())
            end = close.end() if close else len(text)
            spans.append(_line_span(text, at, end))
        at = text.find("-----BEGIN", end)
    pos = 0
    for line in text.split("\n"):
        body = line.strip()
        if len(body) >= 60 and " " not in body and _BASE64_LINE.fullmatch(line.rstrip("\r")) \
                and _mixed(body):
            spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    if not spans:
        return spans
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _scan_lines(text: str, regex: re.Pattern[str], literal: str,
                spans: list[tuple[int, int]]) -> None:
    pos = 0
    for line in text.split("\n"):
        if literal in line.lower() and regex.search(line):
            spans.append((pos, pos + len(line)))
        pos += len(line) + 1


def redact(text: str) -> Redacted:
    """Blank every line of `text` that holds a secret (keeping its indentation and line break)."""
    return _blank(text, find_secret_spans(text))


def _blank(text: str, spans: list[tuple[int, int]]) -> Redacted:
    if not spans:
        return Redacted(text, 0)
    out: list[str] = []
    pos = 0
    lines = 0
    for start, end in spans:
        out.append(text[pos:start])
        parts = re.split(r"(\r\n|\r|\n)", text[start:end])
        for i, part in enumerate(parts):
            if i % 2:
                out.append(part)  # a line break: keep it
            else:
                out.append(part[: len(part) - len(part.lstrip(" \t"))])
                lines += 1
        pos = end
    out.append(text[pos:])
    return Redacted("".join(out), lines)


def redact_around(prefix: str, suffix: str) -> tuple[str, str, int]:
    """Redact prefix + suffix as one text (a secret may straddle the cursor); split back."""
    joined = prefix + suffix
    cut = len(prefix)
    spans = _spans_around(joined, cut)
    if not spans:
        return prefix, suffix, 0
    result = _blank(joined, spans)
    # Blanking only shortens lines; the cursor moves back by what was removed before it.
    removed_before = 0
    for start, end in spans:
        if start >= cut:
            break
        removed_before += _removed(joined[start:min(end, cut)])
    # A cursor inside a blanked line keeps that line's indentation on the prefix side.
    new_cut = cut - removed_before
    return result.text[:new_cut], result.text[new_cut:], result.lines


def _spans_around(joined: str, cut: int) -> list[tuple[int, int]]:
    """Secret spans of prefix + suffix. The lines before and after the cursor's line are the
    same from keystroke to keystroke, so their scans are cached; only the cursor's line is new."""
    if "PRIVATE KEY" in joined:  # a key block may span the segments: scan it whole
        return find_secret_spans(joined)
    head_end = joined.rfind("\n", 0, cut) + 1
    tail_start = joined.find("\n", cut)
    tail_start = len(joined) if tail_start == -1 else tail_start + 1
    spans = list(_cached_spans(joined[:head_end]))
    spans += [(a + head_end, b + head_end)
              for a, b in find_secret_spans(joined[head_end:tail_start])]
    spans += [(a + tail_start, b + tail_start) for a, b in _cached_spans(joined[tail_start:])]
    return spans


_CACHE: OrderedDict[str, tuple[tuple[int, int], ...]] = OrderedDict()
_CACHE_LIMIT = 4_000_000  # bytes of cached text
_cache_bytes = 0
_cache_lock = threading.Lock()


def _cached_spans(text: str) -> tuple[tuple[int, int], ...]:
    global _cache_bytes
    if len(text) < 512:
        return tuple(find_secret_spans(text))
    with _cache_lock:
        hit = _CACHE.get(text)
        if hit is not None:
            _CACHE.move_to_end(text)
            return hit
    spans = tuple(find_secret_spans(text))
    with _cache_lock:
        if text not in _CACHE:
            _CACHE[text] = spans
            _cache_bytes += len(text)
            while _cache_bytes > _CACHE_LIMIT and _CACHE:
                old, _ = _CACHE.popitem(last=False)
                _cache_bytes -= len(old)
    return spans


def _removed(segment: str) -> int:
    """How many characters blanking removes from a segment that starts at a line start."""
    removed = 0
    for i, part in enumerate(re.split(r"(\r\n|\r|\n)", segment)):
        if i % 2 == 0:
            removed += len(part.lstrip(" \t"))
    return removed


def _line_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span to whole lines, without the final line break."""
    line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
    ends = [i for i in (text.find("\n", end), text.find("\r", end)) if i != -1]
    return line_start, min(ends) if ends else len(text)


def _mixed(body: str) -> bool:
    """A base64 blob mixes upper case, lower case and digits; code identifiers rarely do."""
    return (any(c.isupper() for c in body) and any(c.islower() for c in body)
            and any(c.isdigit() for c in body))
