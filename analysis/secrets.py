"""Keep secrets out of prompts: secret-looking files are excluded, secret values masked in place.

Two layers. A file whose name looks like a secret store (`.env*`, `*.pem`, `*.key`, `id_rsa*`,
credentials files, ...) or that matches a user exclude glob never contributes text. In every other
text that goes to a model, each secret value is masked where it stands: every character of the
value becomes `x` (whitespace, quotes and backslash escapes are kept), so the line keeps its
shape and the code stays valid: `"Bearer xxxxxxxx"`, `password: xxxxxxx` (still YAML, where
`*` would start an alias), `postgres://app:xxxxxx@db`. A masked text has the same number of
characters, lines and columns as the original, so a cursor offset or cut position in the original
is the same position in the masked text (the length of a secret is the one thing it shows).

What counts as a secret: the per-line plugins of Yelp's detect-secrets (keywords per file type,
AWS, GitHub, Slack, JWT, basic auth in URLs, Stripe, npm, ... and its high-entropy strings, which
are masked only where the line speaks of a secret or the string is long, mixed and random),
called in-process on their compiled patterns (no settings, no verification requests, no files),
plus this module's own patterns for forms they miss (bearer headers, basic-auth tuples,
`environ.get(NAME, default)`, provider tokens). Private key blocks are masked on every line from
BEGIN to END, the last line included, and a text that starts inside a block (a prompt window cut
from a file) is told so by `in_key_block`; `redact_window` also reads the rest of the lines a
window cuts, so a secret cut by the window's edge is still recognised.

Cost: scanning a line costs about 10 us the first time (detect-secrets' import, about 60 ms, is
paid on first use or by `preload`), so a fresh 2,000-token prompt costs 2-5 ms. Results are
cached per line and per chunk of text (the lines before and after the cursor's line), so while
the user types only the cursor's line is scanned again: about 0.2 ms per prompt.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache, lru_cache
from pathlib import PurePath
from typing import Any

import pathspec

# Matched against the file name (case-insensitive).
SECRET_FILE_NAMES: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.asc", "*.gpg", "*.ppk",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "credentials", "credentials.*", "*-credentials.json", "*_credentials.json",
    "service-account*.json", "client_secret*.json",
    ".netrc", "_netrc", ".pgpass", ".htpasswd", ".npmrc", ".pypirc", ".git-credentials",
    ".dockercfg", "secrets.yml", "secrets.yaml", "secrets.json", "*.tfvars", "*.tfstate",
)
# Matched against the path (directories that only hold secrets).
SECRET_DIRS: tuple[str, ...] = (".ssh", ".gnupg", ".aws", ".docker")
MASK = "x"

# Words that make a random-looking string on the same line a secret (lower case).
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "auth", "cred", "bearer", "key", "private",
                 "signature", "salt", "cookie", "session")
_ENV_NAME = re.compile(r"pass|pwd|secret|token|auth|cred|key|private|signature|salt", re.I)


def _env_default(value: str, match: re.Match[str]) -> bool:
    return bool(_ENV_NAME.search(match.group(1))) or _random(value, 12)


def _has_digit(value: str, match: re.Match[str]) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


# (name, regex, literals, value group, check): a line is searched with the regex only where one
# of the literals occurs in it (case-insensitively for lower-case literals); the value group is
# what gets masked, `check(value, match)` may reject a match.
_Check = Callable[[str, re.Match[str]], bool] | None
_PATTERNS: tuple[tuple[str, str, tuple[str, ...], int, _Check], ...] = (
    ("aws access key id", r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
     ("AKIA", "ASIA", "ABIA", "ACCA"), 0, None),
    ("aws secret key",
     r"(?i:aws).{0,20}(?i:secret|private).{0,20}[:=]\s*['\"]?([A-Za-z0-9/+=]{40})", ("aws",), 1,
     None),
    ("github token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), 0, None),
    ("gitlab token", r"\bglpat-[A-Za-z0-9_\-]{20,}", ("glpat-",), 0, None),
    ("slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/T\w+/B\w+/\w+",
     ("xox", "hooks.slack.com"), 0, None),
    ("google api key", r"\bAIza[0-9A-Za-z_\-]{35}", ("AIza",), 0, None),
    ("api secret key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}", ("sk-",), 0, None),
    ("stripe key", r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}", ("k_live_", "k_test_"), 0, None),
    ("hugging face token", r"\bhf_[A-Za-z0-9]{30,}", ("hf_",), 0, None),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}", ("npm_",), 0, None),
    ("json web token", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
     ("eyJ",), 0, None),
    ("azure account key", r"AccountKey=([A-Za-z0-9+/=]{40,})", ("AccountKey=",), 1, None),
    ("password in url", r"\b[a-z][a-z0-9+.-]{1,20}://[^/\s:@'\"]{0,64}:([^/\s:@'\"]{3,})@[\w.-]+",
     ("://",), 1, None),
    ("authorization header", r"(?i:\b(?:bearer|basic|token))\s+([A-Za-z0-9._~+/-]{16,}=*)",
     ("bearer", "basic", "token"), 1, _has_digit),
    ("basic auth pair", r"(?:\bauth\s*[=:]\s*[(\[]|(?:Basic|Digest)Auth\()\s*[rbuf]?(['\"])"
                        r"[^'\"\n]*\1\s*,\s*[rbuf]?(['\"])([^'\"\n]+)\2",
     ("auth",), 3, None),
    ("secret default", r"(?:environ\.get|getenv|environ\.setdefault|env\.get)\(\s*['\"]([\w.-]*)"
                       r"['\"]\s*,\s*(?:default\s*=\s*)?[rbuf]?(['\"])([^'\"\n]+)\2",
     ("env",), 3, _env_default),
    ("secret default", r"process\.env\.(\w+)\s*(?:\|\||\?\?)\s*(['\"`])([^'\"`\n]+)\2",
     ("process.env",), 3, _env_default),
    ("assigned secret", r"(?i:\b(?:password|passwd|pwd|secret|secret_?key|api[_-]?key|"
                        r"access[_-]?token|auth[_-]?token|client[_-]?secret|private[_-]?key))"
                        r"\b['\"]?\s*[:=]\s*[rbfu]?['\"]([^'\"\s]{8,})['\"]",
     ("pass", "pwd", "secret", "key", "token"), 1, None),
)
_COMPILED = tuple((name, re.compile(regex), tuple((lit, lit.islower()) for lit in literals), group,
                   check) for name, regex, literals, group, check in _PATTERNS)
_KEY_BEGIN = re.compile(r"-{4,5} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}")
_KEY_END = re.compile(r"-{4,5} ?END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}")
_KEY_RUN = re.compile(r"\\.|[A-Za-z0-9+/=]+")  # escapes (kept) or base64 runs (masked)
_KEY_NOISE = re.compile(r"""\\[nrt]|["'`+,;()\[\]{}\\]""")  # string syntax around key lines
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")
_STRICT_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_ALPHABET_RUNS = ("ABCDEFGHIJ", "abcdefghij", "0123456789")  # test alphabets, not data
_PEM_HEADER = re.compile(r"[A-Za-z][A-Za-z-]*: ")
_MASKABLE = re.compile(r"""\\.|[^\s'"`]""")
_IMAGE_MAGIC = ("iVBORw0KGgo", "/9j/", "R0lGOD", "UklGR", "PHN2Zy", "Qk0")
# Every pattern of detect-secrets' token plugins (AWS, GitHub, Slack, Stripe, JWT, ...) needs a
# run of 10 token characters or a URL's "://"; two thirds of code lines have neither.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{10}|://")
_DIGEST_PREFIXES = ("sha1-", "sha256-", "sha384-", "sha512-", "md5-")  # Subresource Integrity
_VALUE_WORDS = {"true", "false", "null", "none", "nil", "yes", "no", "on", "off"}
MAX_LINE = 4000  # longer lines are scanned in overlapping pieces of this size
_PIECE_OVERLAP = 1000


@dataclass(frozen=True, slots=True)
class Redacted:
    """Text with its secret values masked, and how many lines had something masked."""

    text: str
    lines: int


class SecretFilter:
    """Decides which files may reach a model and masks the secrets in the text of the rest."""

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

    def redact(self, text: str, path: str = "") -> Redacted:
        """The text with every secret value masked (see `redact`)."""
        return redact(text, path)


def is_secret_file(path: str | PurePath) -> bool:
    """True when the file's name or folder says it holds secrets."""
    p = PurePath(path)
    name = p.name.lower()
    if any(fnmatchcase(name, pattern) for pattern in SECRET_FILE_NAMES):
        return True
    return any(part in SECRET_DIRS for part in p.parts[:-1])


# ---------------------------------------------------------------------- public masking


def redact(text: str, path: str = "", *, in_key: bool = False) -> Redacted:
    """Mask every secret value in `text` (same length and lines); `path` picks the file type
    (YAML and config files allow unquoted values), `in_key` says the text starts inside a
    private key block."""
    masked, lines, _ = _mask_chunk(text, _ext(path), _BLOCK if in_key else _OUT)
    return Redacted(masked, lines)


def redact_around(prefix: str, suffix: str, path: str = "", *,
                  in_key: bool = False) -> tuple[str, str, int]:
    """Mask prefix + suffix as one text (a secret may straddle the cursor) and split it back at
    the same place (masking keeps lengths). The lines before and after the cursor's line are the
    same from keystroke to keystroke, so their results are cached; only the cursor's line is new."""
    ext = _ext(path)
    joined = prefix + suffix
    cut = len(prefix)
    head_end = joined.rfind("\n", 0, cut) + 1
    tail_start = joined.find("\n", cut)
    tail_start = len(joined) if tail_start == -1 else tail_start + 1
    head, n1, state = _mask_chunk(joined[:head_end], ext, _BLOCK if in_key else _OUT)
    line, n2, state = _mask_chunk(joined[head_end:tail_start], ext, state)
    tail, n3, _ = _mask_chunk(joined[tail_start:], ext, state)
    masked = head + line + tail
    return masked[:cut], masked[cut:], n1 + n2 + n3


EDGE = 1000  # characters of a cut line read on each side of a window, so a cut secret is seen


def redact_window(source: bytes, start: int, cursor: int, end: int,
                  path: str = "") -> tuple[str, str, int]:
    """source[start:cursor] and source[cursor:end] decoded and masked, as `redact_around`, read
    with the rest of the lines they cut (up to EDGE characters) and the key-block state at
    `start`: a window cut inside a line or a key block still finds the secrets it holds."""
    line_start = source.rfind(b"\n", 0, start) + 1
    lead_from = max(line_start, start - EDGE)
    line_end = source.find(b"\n", end)
    trail_to = min(len(source) if line_end == -1 else line_end, end + EDGE)
    lead = source[lead_from:start].decode("utf-8", "replace")
    trail = source[end:trail_to].decode("utf-8", "replace")
    prefix = lead + source[start:cursor].decode("utf-8", "replace")
    suffix = source[cursor:end].decode("utf-8", "replace") + trail
    prefix, suffix, lines = redact_around(prefix, suffix, path,
                                          in_key=in_key_block(source, lead_from))
    return prefix[len(lead):], suffix[:len(suffix) - len(trail)], lines


def in_key_block(source: bytes | str, pos: int) -> bool:
    """True when `pos` lies inside a private key block of `source` (after its BEGIN line and
    before its END), so a text cut from `pos` on starts with key lines."""
    if isinstance(source, str):
        source = source.encode("utf-8", "surrogatepass")
    at = source.rfind(b"PRIVATE KEY", 0, pos)  # the last marker before pos: BEGIN or END
    if at == -1:
        return False
    line_start = source.rfind(b"\n", 0, at) + 1
    first_end = source.find(b"\n", at, pos)
    if first_end == -1:
        return False  # pos is on the marker's line: that line is scanned whole
    head = source[line_start:first_end].decode("utf-8", "replace")
    begin = _KEY_BEGIN.search(head)
    if begin is None or _KEY_END.search(head, begin.end()):
        return False
    # Only as far as the block goes: the first line that is not a key line ends it.
    for line in source[first_end + 1:pos].decode("utf-8", "replace").splitlines():
        if _KEY_END.search(line) or not _key_like(line):
            return False
    return True


def preload() -> None:
    """Import detect-secrets now (about 60 ms) rather than on the first text sent to a model."""
    _detectors()


def secret_spans(line: str, path: str = "") -> list[tuple[int, int, str]]:
    """(start, end, detector) of each secret value found in one line (no key-block state)."""
    return list(_line_spans(line, _ext(path)))


# ---------------------------------------------------------------------- chunks and lines


class _LRU:
    """A cache bounded by the total size (in characters) of what it holds."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Any:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            self._data.move_to_end(key)
            return hit[0]

    def put(self, key: tuple, value: Any, size: int) -> None:
        size += 64  # the entry's own overhead, roughly
        with self._lock:
            if key in self._data:
                return
            self._data[key] = (value, size)
            self._size += size
            while self._size > self.limit and self._data:
                _, (_, old) = self._data.popitem(last=False)
                self._size -= old


# Key-block state between lines: outside, inside a block opened by a BEGIN marker, or inside a
# run of bare base64 lines (a key body whose BEGIN line is not in the text).
_OUT, _BLOCK, _ORPHAN = 0, 1, 2
_CHUNKS = _LRU(2_000_000)  # (ext, state, text) -> (masked, lines, state after)
_LINES = _LRU(4_000_000)  # (ext, state, line) -> (masked or None, state after)
CHUNK_MIN = 512  # shorter texts are cheap to rebuild from the line cache


def _mask_chunk(text: str, ext: str, state: int) -> tuple[str, int, int]:
    if not text:
        return text, 0, state
    key = (ext, state, text)
    if len(text) >= CHUNK_MIN:
        hit = _CHUNKS.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    out: list[str] = []
    count = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        masked, state = _mask_line(body, ext, state)
        if masked is None:
            out.append(raw)
        else:
            out.append(masked + raw[len(body):])
            count += 1
    result = ("".join(out) if count else text), count, state
    if len(text) >= CHUNK_MIN:
        _CHUNKS.put(key, result, 2 * len(text))  # the text and its masked copy
    return result


def _mask_line(line: str, ext: str, state: int) -> tuple[str | None, int]:
    """The masked line (None: nothing to mask) and the key-block state after it."""
    if not line:
        return None, state
    key = (ext, state, line)
    hit = _LINES.get(key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    spans: list[tuple[int, int]] = []
    scan_from = 0
    if state == _BLOCK:
        end = _KEY_END.search(line)
        if end is not None:
            spans += _key_runs(line, 0, end.start())
            scan_from, state = end.end(), _OUT
        elif _key_like(line):
            spans += _key_runs(line, 0, len(line))
            scan_from = len(line)
        else:
            state = _OUT  # the block ended without an END line (a cut or broken key)
    elif state == _ORPHAN:
        end = _KEY_END.search(line)
        body = _KEY_NOISE.sub("", line[:end.start()] if end else line).strip()
        if body and _STRICT_BASE64.fullmatch(body):
            spans += _key_runs(line, 0, end.start() if end else len(line))
            # Full-width lines go on; a shorter one is the body's last line.
            state = _ORPHAN if len(body) >= 60 and end is None else _OUT
            scan_from = end.end() if end else len(line)
        else:
            state = _OUT
    if scan_from < len(line):
        rest = line[scan_from:]
        spans += [(a + scan_from, b + scan_from) for a, b, _ in _line_spans(rest, ext)]
        begin = _key_begin(rest)
        if begin is not None:
            end = _KEY_END.search(rest, begin)
            stop = end.start() if end is not None else len(rest)
            spans += _key_runs(line, scan_from + begin, scan_from + stop)
            state = _OUT if end is not None else _BLOCK
        elif _orphan_key_line(rest):
            spans += _key_runs(line, scan_from, len(line))
            state = _ORPHAN
    result = (_apply(line, spans) if spans else None), state
    _LINES.put(key, result, 2 * len(line))
    return result


def _apply(line: str, spans: list[tuple[int, int]]) -> str | None:
    chars = list(line)
    for start, end in spans:
        for m in _MASKABLE.finditer(line, start, end):
            if m.end() - m.start() == 1:
                chars[m.start()] = MASK
    masked = "".join(chars)
    return masked if masked != line else None


def _key_runs(line: str, start: int, end: int) -> list[tuple[int, int]]:
    """Base64 runs of a key line; escapes and bare operators (`+` joining strings) stay."""
    return [m.span() for m in _KEY_RUN.finditer(line, start, end)
            if m.group()[0] != "\\" and m.group().strip("+/=") != ""]


def _key_like(line: str) -> bool:
    """A line that can be part of a key block: base64, a PEM header, or string syntax only."""
    rest = _KEY_NOISE.sub("", line).strip()
    return _BASE64.fullmatch(rest) is not None or \
        _PEM_HEADER.match(line.strip(" \t\"'`")) is not None


def _orphan_key_line(line: str) -> bool:
    """A full-width line of bare base64 (60+ characters, mixed case and digits)."""
    rest = _KEY_NOISE.sub("", line).strip()
    return (len(rest) >= 60 and _STRICT_BASE64.fullmatch(rest) is not None and _mixed(rest)
            and not rest.startswith(_IMAGE_MAGIC)
            and not any(run in rest for run in _ALPHABET_RUNS))


@lru_cache(maxsize=4096)
def _ext(path: str) -> str:
    """The file's extension, lower case ("" for none): what picks detect-secrets' file type."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def _line_spans(line: str, ext: str) -> list[tuple[int, int, str]]:
    if len(line) > MAX_LINE:  # bound the regexes' work on minified lines: overlapping pieces
        found: list[tuple[int, int, str]] = []
        for at in range(0, len(line), MAX_LINE - _PIECE_OVERLAP):
            piece = line[at:at + MAX_LINE]
            found += [(a + at, b + at, n) for a, b, n in _line_spans(piece, ext)]
        return found
    lowered = line.lower()  # for substring tests only: lower() may change lengths
    spans = _own_spans(line, lowered)
    spans += _library_spans(line, lowered, ext)
    return spans


def _own_spans(line: str, lowered: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for name, regex, literals, group, check in _COMPILED:
        for literal, lower in literals:
            if literal in (lowered if lower else line):
                for m in regex.finditer(line):
                    value = m.group(group)
                    if value and (check is None or check(value, m)):
                        spans.append((*m.span(group), name))
                break
    return spans


# ---------------------------------------------------------------------- detect-secrets glue


@cache
def _detectors() -> tuple[Any, ...]:
    """detect-secrets' plugins, imported on first use (about 60 ms): (keyword regexes by file
    type, regex plugins, entropy plugins, private-key plugin, heuristic filters, file types)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.filters import heuristic
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import (
        Base64HighEntropyString,
        HexHighEntropyString,
    )
    from detect_secrets.plugins.keyword import (
        DENYLIST,
        QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
        REGEX_BY_FILETYPE,
    )
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.util.filetype import determine_file_type

    classes: list[Any] = list(get_mapping_from_secret_type_to_class().values())
    regex_plugins = tuple(  # (compiled pattern, plugin name), flattened for one loop per line
        (regex, cls.__name__) for cls in classes
        if issubclass(cls, RegexBasedDetector)
        and cls.__name__ not in ("IPPublicDetector", "PrivateKeyDetector")  # IPs: no secret
        for regex in cls().denylist)
    # The keyword regexes run only on lines holding a word every denylist entry contains; an
    # entry without one of them (a newer detect-secrets) adds its own text to the words.
    keyword_gate = tuple(_KEYWORD_LITERALS) + tuple(
        entry for entry in DENYLIST if not any(w in entry for w in _KEYWORD_LITERALS))
    return (REGEX_BY_FILETYPE, QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP, keyword_gate,
            regex_plugins, (Base64HighEntropyString(), HexHighEntropyString()),
            PrivateKeyDetector(), heuristic, determine_file_type)


_KEYWORD_LITERALS = ("key", "pass", "pwd", "secret", "contrase")
# Extensions detect-secrets does not know, mapped to one whose rules fit.
_EXT_ALIASES = {".ts": ".js", ".tsx": ".js", ".jsx": ".js", ".mjs": ".js", ".cjs": ".js",
                ".h": ".c", ".hpp": ".cpp", ".cc": ".cpp", ".hh": ".cpp", ".cxx": ".cpp",
                ".kt": ".java", ".scala": ".java", ".rs": ".py", ".rb": ".py",
                ".env": ".cfg", ".sh": ".cfg", ".bash": ".cfg", ".zsh": ".cfg", ".json": ".py"}


@cache
def _keyword_regexes(ext: str) -> tuple[tuple[re.Pattern[str], int], ...]:
    by_type, default, _, _, _, _, _, file_type = _detectors()
    table = by_type.get(file_type("f" + _EXT_ALIASES.get(ext, ext)), default)
    return tuple(table.items())


def _library_spans(line: str, lowered: str, ext: str) -> list[tuple[int, int, str]]:
    _, _, keyword_gate, regex_plugins, entropy, _, heuristic, _ = _detectors()
    spans: list[tuple[int, int, str]] = []
    if any(word in lowered for word in keyword_gate):
        for regex, group in _keyword_regexes(ext):
            for m in regex.finditer(line):
                value = m.group(group)
                if value and _plausible(value, line, heuristic):
                    spans.append((*m.span(group), "keyword"))
    if _TOKEN_RUN.search(line):
        for regex, name in regex_plugins:
            if regex.search(line):
                spans += [(*_value_span(m), name) for m in regex.finditer(line)]
    if "'" in line or '"' in line:
        # A random-looking string is a secret where its line speaks of one, or where it is long
        # and mixes cases and digits; hex digests and test data without such words stay.
        worded = any(word in lowered for word in _SECRET_WORDS)
        for plugin in entropy:
            for m in plugin.regex.finditer(line):
                value = m.group(2)
                if (len(value) >= 8 and (worded or _random(value, 32))
                        and plugin.calculate_shannon_entropy(value) > plugin.entropy_limit
                        and _plausible(value, line, heuristic)):
                    spans.append((*m.span(2), type(plugin).__name__))
    return spans


def _key_begin(line: str) -> int | None:
    """Where a private key's body starts on a line that opens a key block, else None: after a
    `-----BEGIN ... PRIVATE KEY-----` marker, or after detect-secrets' private-key match."""
    if "PRIVATE" not in line and "PuTTY" not in line:
        return None
    marker = _KEY_BEGIN.search(line)
    if marker is not None:
        return marker.end()
    for regex in _detectors()[5].denylist:
        hit = regex.search(line)
        if hit is not None:
            return hit.end()
    return None


def _value_span(m: re.Match[str]) -> tuple[int, int]:
    """The secret part of a plugin's match: its longest group unless that group is the match's
    own prefix (GitHub's `(ghp|gho|...)_...`), else the whole match."""
    groups = [i for i in range(1, (m.lastindex or 0) + 1) if m.group(i)]
    if not groups:
        return m.span()
    best = max(groups, key=lambda i: m.end(i) - m.start(i))
    return m.span() if m.start(best) == m.start() else m.span(best)


def _plausible(value: str, line: str, heuristic: Any) -> bool:
    """detect-secrets' own false-positive filters (templates, `$VAR`, UUIDs, ids, sequences),
    plus literals that no one uses as a secret and text masked already."""
    return not (heuristic.is_templated_secret(value)
                or heuristic.is_prefixed_with_dollar_sign(value)
                or heuristic.is_not_alphanumeric_string(value)
                or heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value)
                or heuristic.is_likely_id_string(value, line)
                or value.lower() in _VALUE_WORDS or set(value) <= {MASK, " "}
                or value.startswith(_DIGEST_PREFIXES))


def _random(value: str, min_length: int) -> bool:
    """A long string mixing upper case, lower case and digits, not a base64 image."""
    return len(value) >= min_length and _mixed(value) and not value.startswith(_IMAGE_MAGIC)


def _mixed(body: str) -> bool:
    """A base64 blob mixes upper case, lower case and digits; code identifiers rarely do."""
    return (any(c.isupper() for c in body) and any(c.islower() for c in body)
            and any(c.isdigit() for c in body))
