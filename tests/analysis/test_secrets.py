"""Secrets never reach a model: secret files are excluded, secret values masked in place.

The planted workspace (tests/fixtures/secrets_workspace, its README lists every value) holds each
form a tester found leaking plus the obvious ones; every path that sends text to a model is fed
from it. Look-alikes in real code must stay, and the false-redaction rate is measured on the
standard library of the interpreter running the tests.
"""

from __future__ import annotations

import ast
import asyncio
import configparser
import os
import sysconfig
import time
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
import yaml

from analysis.context.builder import ContextBuilder
from analysis.documents.document import Document
from analysis.index.workspace_index import SymbolIndex
from analysis.secrets import (
    SecretFilter,
    in_key_block,
    is_secret_file,
    preload,
    redact,
    redact_around,
    secret_spans,
)
from analysis.settings import ContextSettings
from generation.chat.explain import Item, explain, snippet
from generation.chat.rewrite import messages_for
from generation.completion.prompts import build_fim_prompt
from tests.analysis.context.context_cases import load, place

WORKSPACE = Path(__file__).resolve().parents[1] / "fixtures" / "secrets_workspace"
SOURCES = ("app/settings.py", "app/client.py", "web/api.js", "config/app.yaml",
           "config/service.ini")


def planted() -> list[tuple[str, str, str]]:
    """(file, what, value) for every line `- file | what | value` of the workspace README."""
    rows = []
    for line in (WORKSPACE / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("- "):
            file, what, value = (part.strip() for part in line[2:].split(" | "))
            rows.append((file, what, value))
    return rows


PLANTED = planted()
FRAGMENT = 12  # a leak of any 12 characters of a secret counts


def leaks(text: str) -> list[str]:
    """The planted secrets that appear in `text`, whole or as any 12-character piece."""
    found = []
    for _, what, value in PLANTED:
        pieces = [value[i:i + FRAGMENT] for i in range(max(1, len(value) - FRAGMENT + 1))]
        if any(piece in text for piece in pieces):
            found.append(f"{what}: {value}")
    return found


def test_the_readme_lists_every_form_and_each_value_is_in_its_file():
    whats = " ".join(what for _, what, _ in PLANTED)
    for form in ("dict whose line does not say aws", "bearer token in a headers dict",
                 "basic-auth password tuple", "private key in a Python string, last line",
                 "os.environ.get default", "unquoted YAML password", "AWS access key id",
                 "GitHub token", "Slack bot token", "JSON web token", "password in a URL",
                 "high-entropy string assigned to token"):
        assert form in whats, form
    for file, what, value in PLANTED:
        assert value in (WORKSPACE / file).read_text(encoding="utf-8"), what


@pytest.mark.parametrize("name", SOURCES)
def test_every_planted_secret_is_masked_and_the_file_keeps_its_shape(name):
    text = (WORKSPACE / name).read_text(encoding="utf-8")
    result = redact(text, name)
    assert leaks(result.text) == []
    assert len(result.text) == len(text)
    assert [len(line) for line in result.text.splitlines()] == \
        [len(line) for line in text.splitlines()]
    assert result.lines == sum(a != b for a, b in zip(text.splitlines(),
                                                     result.text.splitlines(), strict=True))
    # Still valid code or config, with its structure unchanged.
    if name.endswith(".py"):
        assert ast.dump(ast.parse(result.text)).count("Constant") == \
            ast.dump(ast.parse(text)).count("Constant")
    elif name.endswith(".js"):
        assert not Document("file:///w/api.js", result.text).has_errors()
    elif name.endswith(".yaml"):
        masked, original = yaml.safe_load(result.text), yaml.safe_load(text)
        assert masked["database"]["password"] == "x" * 24 and masked.keys() == original.keys()
    else:
        parser = configparser.ConfigParser()
        parser.read_string(result.text)
        assert parser["smtp"]["password"] == "x" * 20 and parser["smtp"]["username"] == "alerts"


def test_masked_lines_as_the_model_sees_them():
    text = (WORKSPACE / "app" / "settings.py").read_text(encoding="utf-8")
    lines = redact(text, "app/settings.py").text.splitlines()
    by_start = {line.split("=")[0].strip(): line for line in lines}
    assert by_start["DATABASE_PASSWORD"] == \
        'DATABASE_PASSWORD = os.environ.get("DATABASE_PASSWORD", "' + "x" * 24 + '")'
    assert by_start["DATABASE_URL"] == \
        'DATABASE_URL = "postgresql://app:' + "x" * 21 + '@db.internal:5432/shop"'
    assert '    "secret_access_key": "' + "x" * 40 + '",' in lines
    assert '    headers = {"Authorization": "Bearer ' + "x" * 40 + '", "Accept": "json"}' in lines
    assert '    return session.get(url, auth=("reporter", "' + "x" * 17 + '"), headers=headers)' \
        in lines
    key = lines.index('SIGNING_KEY = """-----BEGIN RSA PRIVATE KEY-----')
    assert lines[key + 6] == "x" * 26 and lines[key + 7] == "-----END RSA PRIVATE KEY-----"
    # Look-alikes in the same file stay as written.
    assert '    password = getpass.getpass("admin password: ")' in lines
    assert '    "endpoint": "https://storage.internal",' in lines


def test_masking_is_idempotent_and_counts_lines():
    text = (WORKSPACE / "web" / "api.js").read_text(encoding="utf-8")
    once = redact(text, "web/api.js")
    assert redact(once.text, "web/api.js").text == once.text
    assert once.lines == 7  # token, JWT, password, env default and three key lines


def test_a_secret_straddling_the_cursor_is_masked_on_both_sides():
    token = "ghp_" + "FAKEa1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6"
    before, after, lines = redact_around(f'x = 1\ntoken = "{token[:10]}', f'{token[10:]}"\ny = 2\n')
    assert (before, after, lines) == ('x = 1\ntoken = "' + "x" * 10, "x" * 30 + '"\ny = 2\n', 1)


def test_a_text_that_starts_inside_a_key_block_is_masked_to_its_end():
    text = (WORKSPACE / "app" / "settings.py").read_text(encoding="utf-8")
    source = text.encode()
    last = text.index("pU5iF66tmH3Z3vooRoARFAKE==")  # the key's short last line
    assert in_key_block(source, last) and in_key_block(text, last)
    assert not in_key_block(source, text.index("SIGNING_KEY")) and not in_key_block(source, 0)
    assert not in_key_block(source, text.index("def admin_password"))
    window = text[last:]
    assert "pU5iF66tmH3Z3vooRoARFAKE==" in redact(window, "settings.py").text  # no state: missed
    assert leaks(redact(window, "settings.py", in_key=True).text) == []
    # A window that starts on a full-width key line needs no state: bare base64 opens a block.
    assert leaks(redact(text[text.index("xoR+TG7n"):], "settings.py").text) == []


@pytest.mark.parametrize(("text", "path"), [
    ("tls:\n  key: |\n    -----BEGIN EC PRIVATE KEY-----\n    MHcCAQEEIFAKEfake0TESTtest1\n"
     "    Qm9ndXM=\n    -----END EC PRIVATE KEY-----\n  port: 443\n", "x.yaml"),
    ("const key = `-----BEGIN PRIVATE KEY-----\nMHcCAQEEIFAKEfake0TESTtest1\nQm9ndXM=\n"
     "-----END PRIVATE KEY-----`\nconst port = 443\n", "x.go"),
])
def test_key_blocks_in_yaml_and_raw_strings_are_masked_to_the_last_line(text, path):
    masked = redact(text, path).text
    assert "MHcCAQEE" not in masked and "Qm9ndXM" not in masked and "443" in masked
    assert masked.count("PRIVATE KEY-----") == 2 and len(masked) == len(text)


@pytest.fixture(scope="module")
def index():
    index = SymbolIndex()
    index.build([WORKSPACE])
    return index


@pytest.mark.parametrize("budget", [30, 60, 120, 250, 2048])
def test_no_prompt_or_context_at_any_position_or_budget_leaks(index, budget):
    """Every line start and end of every source, cut to budgets that put the prefix start
    inside the key block, the dicts and the headers: the prompt and the context are clean."""
    builder = ContextBuilder(index, ContextSettings(budget_tokens=budget))
    settings = load(WORKSPACE / "app" / "settings.py")
    index.note_edit(settings, place(settings, "SIGNING_KEY"))  # a recent edit near the key
    index.note_edit(settings, place(settings, "headers = "))
    checked = 0
    for name in SOURCES:
        doc = load(WORKSPACE / name)
        for line in range(doc.line_count):
            start, end = doc.line_span(line)
            for offset in (start, end, (start + end) // 2):
                ctx = builder.build(doc, offset)
                shown = msgspec.json.encode(ctx).decode() + build_fim_prompt(ctx).text
                assert leaks(shown) == [], (name, line, offset)
                checked += 1
    assert checked > 300
    assert any(s.kind == "recent_edit" for s in builder.build(
        load(WORKSPACE / "app" / "client.py"), 0).related) or budget < 2048


def test_secret_files_are_never_indexed_nor_give_a_context(index):
    assert sorted(Path(p).name for p in index.files()) == ["api.js", "client.py", "settings.py"]
    doc = load(WORKSPACE / ".env")
    ctx = ContextBuilder(index, ContextSettings()).build(doc, 10)
    assert ctx.excluded and ctx.prefix == ctx.suffix == "" and ctx.related == ()
    assert leaks(build_fim_prompt(ctx).text) == []


def test_the_prompt_builder_masks_a_context_made_any_other_way(index):
    """build_fim_prompt is the model's boundary: a context holding raw text is masked there."""
    doc = load(WORKSPACE / "app" / "client.py")
    ctx = ContextBuilder(index, ContextSettings()).build(doc, len(doc.source))
    raw = (WORKSPACE / "app" / "settings.py").read_text(encoding="utf-8")
    assert ctx.related, "client.py's context has snippets from settings.py"
    forged = msgspec.structs.replace(
        ctx, prefix=raw, suffix=raw, path="app/settings.py",
        related=(msgspec.structs.replace(ctx.related[0], text=raw),))
    prompt = build_fim_prompt(forged).text
    assert leaks(prompt) == [] and "def fetch_report(session, report_id: int):" in prompt


def test_rewrite_and_explain_send_masked_text():
    source = (WORKSPACE / "app" / "settings.py").read_bytes()
    doc = Document((WORKSPACE / "app" / "settings.py").as_uri(), source.decode())
    start = source.index(b"xoR+TG7n")  # a selection that starts inside the key block
    messages = messages_for(doc, start, len(source))
    assert leaks(messages[1].content) == [] and "def fetch_report" in messages[1].content

    sent: list[str] = []

    async def chat(messages):
        sent.append(messages[1].content)
        return SimpleNamespace(text="Fine.\n```python\npass\n```")

    async def health():
        return None

    client = SimpleNamespace(health=health, chat=chat)
    line = source[:source.index(b"pU5iF66")].count(b"\n") + 1
    yaml_text = (WORKSPACE / "config" / "app.yaml").read_bytes()
    items = [Item(1, "app/settings.py", "SC999", "a finding on the key's last line",
                  snippet(source, line, line), "python"),
             Item(2, "app/settings.py", "SC998", 'it says "Bearer fakeVkDCttRWcentR9WAgDeDGCQ9b'
                  'lBPrefikBs4"', snippet(source, 1, 3), "python"),
             Item(3, "config/app.yaml", "SC997", "yaml", snippet(yaml_text, 5, 5), "yaml")]
    notes, error = asyncio.run(explain(client, items))  # type: ignore[arg-type]
    assert error is None and len(notes) == 3 and len(sent) == 3
    assert all(leaks(text) == [] for text in sent), sent


# Shapes of real secrets (fake values) in lines of the languages people write them in.
@pytest.mark.parametrize(("line", "path", "value"), [
    ('key = "AKIAFAKE0TEST1KEY23Z"', "x.py", "AKIAFAKE0TEST1KEY23Z"),
    ("aws_secret_access_key=fakeu0DnAXyrr+n6a69p9+V2xaFld7W5oHq8K5ZL", "x.cfg",
     "fakeu0DnAXyrr+n6a69p9+V2xaFld7W5oHq8K5ZL"),
    ('client.login(token="ghp_FAKEw9qnqGudbXrP2nemsHDWGiuZGZqJ4TUV")', "x.py",
     "ghp_FAKEw9qnqGudbXrP2nemsHDWGiuZGZqJ4TUV"),
    ("SLACK=xoxb-0000000000-FAKEfaketesttoken", "x.sh", "xoxb-0000000000-FAKEfaketesttoken"),
    ('openai.api_key = "sk-proj-FAKEZx9Zx9Zx9Zx9Zx9Zx9Zx9"', "x.py", "FAKEZx9Zx9Zx9Zx9Zx9Zx9Zx9"),
    ('"password": "correct-horse-battery"', "x.json", "correct-horse-battery"),
    ("Authorization: Bearer fakeVkDCttRWcentR9WAgDeDGCQ9blBPrefikBs4", "x.http",
     "fakeVkDCttRWcentR9WAgDeDGCQ9blBPrefikBs4"),
    ('curl -H "Authorization: token ghp_FAKEw9qnqGudbXrP2nemsHDWGiuZGZqJ4TUV"', "x.sh",
     "ghp_FAKEw9qnqGudbXrP2nemsHDWGiuZGZqJ4TUV"),
    ("postgres://admin:s3cr3t-pw@db.internal:5432/app", "x.txt", "s3cr3t-pw"),
    ("hf_" + "FAKE" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4", "x.txt", "Q1w2E3r4T5y6U7i8O9p0"),
    ("AIza" + "FAKE" + "B1c2D3e4F5g6H7i8J9k0L1m2N3o4P5q", "x.txt", "B1c2D3e4F5g6H7i8J9k0"),
    ("sk_live_" + "FAKE" + "4" * 20, "x.txt", "FAKE" + "4" * 20),
    ("glpat-" + "FAKEx" * 4, "x.txt", "FAKEx" * 4),
    ("DefaultEndpointsProtocol=https;AccountKey=" + "FAKE" * 22, "x.txt", "FAKE" * 22),
    ('requests.post(url, auth=HTTPBasicAuth("ci", "fake-basic-pass"))', "x.py", "fake-basic-pass"),
    ('const pw = process.env.DB_PASSWORD ?? "fake-js-default";', "x.ts", "fake-js-default"),
    ('secret := "fakeGoSecretValue42"', "x.go", "fakeGoSecretValue42"),
    ("api_key: fakeUnquotedYamlKey99", "x.yml", "fakeUnquotedYamlKey99"),
    ('let password = "fake-rust-password";', "x.rs", "fake-rust-password"),
    ('{"pk": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCFAKE\\nQm9ndXNU'
     'ZXN0\\n-----END PRIVATE KEY-----\\n"}', "x.json", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCFAKE"),
])
def test_secret_shapes_are_masked(line, path, value):
    result = redact(f"a = 1\n{line}\nb = 2\n", path)
    assert result.lines == 1 and value not in result.text
    assert result.text.split("\n")[0::2] == ["a = 1", "b = 2"]
    assert len(result.text) == len(line) + 13


# Real code that looks like secrets but is not: it must reach the model as written.
@pytest.mark.parametrize(("line", "path"), [
    ("password = getpass()", "x.py"),
    ('token = request.headers["x"]', "x.py"),
    ('password = input("Password: ")', "x.py"),
    ("token = get_token(session)", "x.py"),
    ('api_key = os.environ["API_KEY"]', "x.py"),
    ('api_key = os.environ.get("API_KEY")', "x.py"),
    ('home = os.environ.get("HOME", "/home/fallback-user")', "x.py"),
    ("secret = vault.read(path)", "x.py"),
    ("def check_password(user, password):", "x.py"),
    ('headers = {"Authorization": f"Bearer {token}"}', "x.py"),
    ('self.assertEqual(h.hexdigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b'
     '7852b855")', "test_x.py"),
    ('digest = "d41d8cd98f00b204e9800998ecf8427e"', "test_x.py"),
    ('commit = "9fceb02d0ae598e95dc970b74767f19372d61af8"', "x.py"),
    ('id := "123e4567-e89b-12d3-a456-426614174000"', "x_test.go"),
    ('requestID := uuid.MustParse("f47ac10b-58cc-4372-a567-0e02b2c3d479")', "x_test.go"),
    ('PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAA'
     'BJRU5ErkJggg=="', "x.py"),
    ('"integrity": "sha512-5M53BsOqcReBM10CEzSaGC4lddbxUMy9v+iLQ8GPQl2d27nb8yuN8GHr8JhtKZe3H3AIIB'
     'vsdZDfCqO8lqGa6Q==",', "package-lock.json"),
    ("password: ${DB_PASSWORD}", "x.yaml"),
    ("secret_rotation: true", "x.yaml"),
    ("password_field: null", "x.yaml"),
    ('ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"', "x.py"),
    ("SKIP_SLOW_TESTS = True", "x.py"),
    ("https://example.com/docs/api", "x.md"),
    ("hash = sha256(data).hexdigest()", "x.py"),
    ('TOKEN_TYPE = "bearer"', "x.py"),
    ("    Supports IPv4 addresses on all platforms and IPv6 on platforms with IPv6", "x.py"),
])
def test_look_alikes_are_left_alone(line, path):
    assert redact(line + "\n", path).text == line + "\n", secret_spans(line, path)


def _stdlib_files(count: int) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    if len(files) < count:
        pytest.skip(f"only {len(files)} Python files under {root}")
    step = len(files) / count
    return [files[int(i * step)] for i in range(count)]


def test_false_redactions_on_the_standard_library_stay_rare():
    """Code no one here wrote: 300 files of the interpreter's standard library (tests included,
    which hold example passwords, URLs with credentials and base64 data)."""
    files = _stdlib_files(300)
    total = masked = 0
    samples: list[str] = []
    started = time.process_time()
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        result = redact(text, file.name)
        total += text.count("\n") + 1
        masked += result.lines
        if result.lines and len(samples) < 12:
            for a, b in zip(text.splitlines(), result.text.splitlines(), strict=True):
                if a != b and len(samples) < 12:
                    samples.append(f"  {file.name}: {a.strip()[:90]}")
    cpu = time.process_time() - started
    rate = masked / total
    print(f"\nsecrets: stdlib files=300 lines={total} masked={masked} ({rate:.4%}), "
          f"{cpu / total * 1e6:.1f} us/line cold\n" + "\n".join(samples))
    assert rate < 0.0015  # measured 0.06-0.07%: mostly base64 test data and example credentials


def test_secret_file_names():
    for path in (".env", "config/.env.local", "id_rsa", "id_ed25519.pub", "tls/server.key",
                 "cert.pem", "credentials", "gcp/service-account-prod.json", ".npmrc",
                 "home/.ssh/config", "terraform.tfvars", "putty.ppk"):
        assert is_secret_file(path), path
    for path in ("env.py", "keys.py", "src/credentials_form.tsx", "README.md", "pem.go"):
        assert not is_secret_file(path), path
    assert SecretFilter(["*.private.*", "vendor/"]).is_excluded("/w/a/b.private.py", "/w")
    assert SecretFilter(["vendor/"]).is_excluded("/w/vendor/x.go", "/w")
    assert not SecretFilter(["vendor/"]).is_excluded("/w/src/x.go", "/w")


def test_user_excludes_apply_to_the_current_file(tmp_path):
    (tmp_path / "internal").mkdir()
    (tmp_path / "internal" / "vault.py").write_text("def unseal():\n    return 'sealed'\n")
    index = SymbolIndex(excludes=["internal/"])
    index.build([tmp_path])
    assert len(index) == 0
    vault = load(tmp_path / "internal" / "vault.py")
    ctx = ContextBuilder(index, ContextSettings(exclude=["internal/"])).build(vault, 10)
    assert ctx.excluded and "sealed" not in build_fim_prompt(ctx).text


def test_scanning_needs_no_settings_files_or_network(monkeypatch, tmp_path):
    """detect-secrets is used in-process: no baseline, no config file, no verify requests."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("a secret scan opened a socket")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.chdir(tmp_path)
    preload()
    text = (WORKSPACE / "app" / "settings.py").read_text(encoding="utf-8") + "\n# new line\n"
    assert leaks(redact(text, "settings.py").text) == []
    assert os.listdir(tmp_path) == []
