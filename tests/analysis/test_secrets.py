"""Secrets never reach a prompt: secret files are excluded, secret lines blanked (planted tests)."""

from __future__ import annotations

import pytest

from analysis.context import ContextBuilder
from analysis.secrets import SecretFilter, is_secret_file, redact, redact_around
from analysis.settings import ContextSettings
from analysis.symbols import SymbolIndex
from generation.prompts import build_fim_prompt
from tests.analysis.context_cases import load, place

# Fake credentials in the shapes real ones have (none is valid anywhere).
AWS_ID = "AKIAQ3EXAMPLE7TESTKEY"[:20]
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
SLACK = "xoxb-" + "123456789012-abcdefABCDEF"
OPENAI = "sk-proj-" + "Zx9" * 10
PASSWORD = "correct-horse-battery"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
KEY_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2kP9mZ0vq8Yc3k4Gx7FhWz1S8o0yQ5b"
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n{KEY_BODY[::-1]}\n" \
              "-----END RSA PRIVATE KEY-----"
ENV_VALUE = "envsecretvalue-0123456789"
ALL = [AWS_ID, AWS_SECRET, GITHUB, SLACK, OPENAI, PASSWORD, JWT, KEY_BODY, KEY_BODY[::-1],
       ENV_VALUE]


@pytest.fixture
def planted(tmp_path):
    """A workspace with secret files and source files holding secret lines."""
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={ENV_VALUE}\n")
    (tmp_path / ".env.production").write_text(f"DB_PASSWORD={ENV_VALUE}\n")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "id_rsa").write_text(PRIVATE_KEY + "\n")
    (tmp_path / "deploy" / "server.pem").write_text(PRIVATE_KEY + "\n")
    (tmp_path / "deploy" / "credentials.json").write_text(f'{{"token": "{ENV_VALUE}"}}\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "settings.py").write_text(
        '"""Service settings."""\n\n'
        f'AWS_ACCESS_KEY_ID = "{AWS_ID}"\n'
        f'aws_secret_access_key = "{AWS_SECRET}"\n'
        f'SIGNING_KEY = """{PRIVATE_KEY}"""\n\n\n'
        "def connect(region: str) -> str:\n"
        f'    """Connect with the bot token {SLACK} (rotate monthly)."""\n'
        '    return region\n\n\n'
        f'DEFAULT_TOKEN = "{GITHUB}"\n')
    (tmp_path / "app" / "client.py").write_text(
        "from app.settings import DEFAULT_TOKEN, SIGNING_KEY, connect\n\n"
        f'OPENAI_KEY = "{OPENAI}"\n'
        f'password = "{PASSWORD}"\n'
        f'SESSION = "{JWT}"\n\n\n'
        "def start() -> str:\n"
        "    token = DEFAULT_TOKEN\n"
        "    return connect(\n")
    (tmp_path / "internal").mkdir()
    (tmp_path / "internal" / "vault.py").write_text("def unseal():\n    return 'sealed'\n")
    return tmp_path


def prompt_at(index, doc, offset, excludes=()) -> str:
    settings = ContextSettings(exclude=list(excludes))
    ctx = ContextBuilder(index, settings).build(doc, offset)
    return build_fim_prompt(ctx).text


def test_secret_files_are_never_indexed(planted):
    index = SymbolIndex(excludes=["internal/"])
    index.build([planted])
    names = sorted(p.rsplit("/", 1)[-1] for p in index.files())
    assert names == ["client.py", "settings.py"]


def test_secret_lines_never_reach_the_prompt(planted):
    index = SymbolIndex()
    index.build([planted])
    settings_doc = load(planted / "app" / "settings.py")
    index.note_edit(settings_doc, place(settings_doc, "aws_secret_access_key"))
    client = load(planted / "app" / "client.py")
    text = prompt_at(index, client, place(client, "return connect("))
    # The context is real: the definitions and the recent edit came along...
    assert "def connect(region: str) -> str:" in text and "# app/settings.py" in text
    # ...but no secret did, from the current file, a snippet's docstring or a recent edit.
    for secret in ALL:
        assert secret not in text, secret
    assert "PRIVATE KEY" not in text


def test_secret_files_give_an_empty_context(planted):
    index = SymbolIndex()
    index.build([planted])
    for name in (".env", ".env.production", "deploy/id_rsa", "deploy/server.pem",
                 "deploy/credentials.json"):
        doc = load(planted / name)
        ctx = ContextBuilder(index, ContextSettings()).build(doc, len(doc.source) // 2)
        assert ctx.excluded and ctx.prefix == ctx.suffix == "" and ctx.related == ()
        text = build_fim_prompt(ctx).text
        assert not any(secret in text for secret in ALL)
        index.note_edit(doc, 0)  # edits in secret files are not remembered either
    assert index.recent_edits() == []


def test_user_excludes_apply_to_the_current_file(planted):
    index = SymbolIndex(excludes=["internal/"])
    index.build([planted])
    vault = load(planted / "internal" / "vault.py")
    ctx = ContextBuilder(index, ContextSettings(exclude=["internal/"])).build(vault, 10)
    assert ctx.excluded and "sealed" not in build_fim_prompt(ctx).text


def test_a_secret_straddling_the_cursor_is_blanked_on_both_sides():
    before, after, lines = redact_around(f'x = 1\ntoken = "{GITHUB[:10]}',
                                         f'{GITHUB[10:]}"\ny = 2\n')
    assert (before, after, lines) == ("x = 1\n", "\ny = 2\n", 1)


@pytest.mark.parametrize("line", [
    f'key = "{AWS_ID}"', f"aws_secret_access_key={AWS_SECRET}", f"token: {GITHUB}",
    f"SLACK={SLACK}", f'openai.api_key = "{OPENAI}"', f'"password": "{PASSWORD}"',
    f"Authorization: Bearer {JWT}", "postgres://admin:s3cr3t-pw@db.internal:5432/app",
    "hf_" + "Q" * 34, "AIza" + "B" * 35, "sk_live_" + "4" * 24, "glpat-" + "x" * 20,
    "DefaultEndpointsProtocol=https;AccountKey=" + "A" * 44, f"  {KEY_BODY}",
])
def test_secret_line_patterns(line):
    result = redact(f"a = 1\n{line}\nb = 2\n")
    assert result.lines == 1
    assert result.text.split("\n")[0::2] == ["a = 1", "b = 2"]


@pytest.mark.parametrize("line", [
    'password = input("Password: ")', "token = get_token(session)",
    'api_key = os.environ["API_KEY"]', "secret = vault.read(path)",
    "def check_password(user, password):", "SKIP_SLOW_TESTS = True",
    "https://example.com/docs/api", "hash = sha256(data).hexdigest()",
])
def test_ordinary_code_is_left_alone(line):
    assert redact(line + "\n").lines == 0


def test_secret_file_names():
    for path in (".env", "config/.env.local", "id_rsa", "id_ed25519.pub", "tls/server.key",
                 "cert.pem", "credentials", "gcp/service-account-prod.json", ".npmrc",
                 "home/.ssh/config", "terraform.tfvars"):
        assert is_secret_file(path), path
    for path in ("env.py", "keys.py", "src/credentials_form.tsx", "README.md", "pem.go"):
        assert not is_secret_file(path), path
    assert SecretFilter(["*.private.*", "vendor/"]).is_excluded("/w/a/b.private.py", "/w")
    assert SecretFilter(["vendor/"]).is_excluded("/w/vendor/x.go", "/w")
    assert not SecretFilter(["vendor/"]).is_excluded("/w/src/x.go", "/w")
