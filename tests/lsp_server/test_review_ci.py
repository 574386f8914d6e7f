"""`stagecoder review` at CI scale: --diff on a git repository, the cache, --shard and --merge,
and the priority of `--model` explanations on the wire. Run in-process through the CLI entry."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import analysis.review.run as run_module
from analysis.review.cache import ReviewCache
from analysis.review.run import FileResult
from lsp_server.cli import main
from tests.lsp_server._proxy_helpers import fake_in_thread

SCHEMA = Path(__file__).parents[1] / "fixtures" / "report" / "sarif-schema-2.1.0.json"

FLAGGED = ('def f(x=[]):\n    return x\n\n\n'
           'def g(y):\n    if y is "a":\n        return 1\n    return 2\n')


def review(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["review", "--no-progress", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "a.py").write_text(FLAGGED)
    (tmp_path / "b.py").write_text(FLAGGED)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_diff_reports_only_findings_on_changed_lines(repo, capsys) -> None:
    # a.py: one line rewritten (line 6 keeps its finding), one function added with a finding;
    # b.py untouched (its two findings are old); c.py is new and untracked (all of it counts).
    (repo / "a.py").write_text(FLAGGED.replace('"a"', '"b"') + "\n\ndef h(z={}):\n    return z\n")
    (repo / "c.py").write_text("def k(w=[]):\n    return w\n")
    code, out, err = review(capsys, "--diff", "main")
    assert (code, err) == (1, "")
    assert out == (
        'a.py:6:8: SC305 `is` compares identity with a literal; use `==`\n'
        "a.py:11:9: SC303 default value `{}` of `z` is created once and shared between calls\n"
        "c.py:1:9: SC303 default value `[]` of `w` is created once and shared between calls\n"
        "Found 3 findings in 2 files.\n")
    # The full review still sees the old findings; --diff exits on the changed lines alone.
    assert review(capsys, "--no-cache")[1].endswith("Found 6 findings in 3 files.\n")
    git(repo, "checkout", "-q", "-b", "feature")  # (the fixture's own repository)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "change")
    (repo / "b.py").write_text(FLAGGED + "\n# a comment, no finding\n")
    code, out, _ = review(capsys, "--diff", "HEAD")
    assert (code, out) == (0, "No findings.\n")
    # A range: what the branch changed since main, committed (the working tree does not count).
    code, out, _ = review(capsys, "--diff", "main...HEAD", "--format", "json")
    names = sorted({f["filename"] for f in json.loads(out)["findings"]})
    assert (code, names) == (1, ["a.py", "c.py"])


def test_diff_errors_are_one_line(repo, capsys, tmp_path_factory) -> None:
    code, out, err = review(capsys, "--diff", "no-such-branch")
    assert (code, out) == (2, "")
    assert err.startswith("stagecoder: error: git diff failed: ") and err.count("\n") == 1
    assert review(capsys, "--diff", "main", "--fix")[2] == (
        "stagecoder: error: --diff and --fix cannot be combined (a fix may touch unchanged "
        "lines)\n")


def test_an_unchanged_file_is_never_checked_again(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text(FLAGGED)
    checked: list[str] = []
    real = run_module.analyze_report

    def counting(doc, review_settings, path="", **kw):
        checked.append(path)
        return real(doc, review_settings, path=path, **kw)

    monkeypatch.setattr(run_module, "analyze_report", counting)
    cache = ["--cache-dir", str(tmp_path / ".cache")]
    cold = review(capsys, ".", *cache)
    assert sorted(checked) == ["a.py", "b.py", "c.py"]
    checked.clear()
    assert review(capsys, ".", *cache) == cold and checked == []  # warm: the same report
    (tmp_path / "b.py").write_text(FLAGGED + "x = 1\n")
    review(capsys, ".", *cache)
    assert checked == ["b.py"]  # only the changed file
    checked.clear()
    review(capsys, ".", *cache, "--select", "SC303")  # other settings: another key
    assert sorted(checked) == ["a.py", "b.py", "c.py"]
    checked.clear()
    review(capsys, ".", *cache, "--no-cache")
    assert len(checked) == 3


def test_the_cache_is_bounded_in_bytes(tmp_path) -> None:
    def key(i: int) -> bytes:
        return bytes([i]) * 32

    def entry(i: int) -> FileResult:
        return FileResult(f"f{i}.py", notes=["x" * 100])

    first = ReviewCache(tmp_path, max_bytes=3200)
    for i in range(20):
        first.put(key(i), entry(i))
    first.close()
    second = ReviewCache(tmp_path, max_bytes=3200)
    assert len(second.get_many([key(i) for i in range(5)], FileResult)) == 5  # used again
    for i in range(20, 30):
        second.put(key(i), entry(i))
    second.close()  # over the bound now: the entries not used for longest go
    third = ReviewCache(tmp_path)
    assert 0 < third.stored_bytes() <= 3200
    kept = third.get_many([key(i) for i in range(30)], FileResult)
    assert set(range(5)) | set(range(20, 30)) <= {k[0] for k in kept} != set(range(30))
    third.close()


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Files with findings in folders, one with invalid UTF-8 (a warning), one binary."""
    monkeypatch.chdir(tmp_path)
    for i in range(14):
        folder = tmp_path / ("pkg" if i % 2 else "lib") / f"m{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text(FLAGGED.replace("x=[]", f"x{i}=[]"))
    (tmp_path / "latin.py").write_bytes(b"# caf\xe9\ndef f(x=[]):\n    return x\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "blob.py").write_bytes(b"\x00\x01binary")  # not reviewed: an error
    return tmp_path


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_shards_merge_into_the_unsharded_report(tree, capsys, fmt) -> None:
    full_code, _, full_err = review(capsys, ".", "--format", fmt, "-o", "full.out", "--no-cache")
    assert full_code == 2 and "blob.py" in full_err and "latin.py" in full_err
    shards = []
    for i in (1, 2, 3):
        review(capsys, ".", "--format", fmt, "--shard", f"{i}/3", "-o", f"s{i}.out")
        shards.append(f"s{i}.out")
    texts = [Path(s).read_text() for s in shards]
    assert all(texts) and len(set(texts)) == 3
    if fmt == "sarif":  # a shard's log, with its order in the run's properties, is valid SARIF
        jsonschema = pytest.importorskip("jsonschema")
        schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
        validator = jsonschema.validators.validator_for(schema)(schema)
        for text in texts:
            assert [e.message for e in validator.iter_errors(json.loads(text))] == []
    code, out, err = review(capsys, "--merge", *shards, "-o", "merged.out")
    assert (code, out, err) == (full_code, "", "")
    assert Path("merged.out").read_text() == Path("full.out").read_text()
    # The order of the reports on the command line does not matter.
    review(capsys, "--merge", *reversed(shards), "-o", "merged2.out")
    assert Path("merged2.out").read_text() == Path("full.out").read_text()


def test_merge_refuses_an_incomplete_or_mixed_set(tree, capsys) -> None:
    for i in (1, 2):
        review(capsys, ".", "--format", "json", "--shard", f"{i}/2", "-o", f"s{i}.json")
    review(capsys, ".", "--format", "sarif", "--shard", "1/2", "-o", "s1.sarif")
    assert review(capsys, "--merge", "s1.json") == (
        2, "", "stagecoder: error: shard 2/2 is missing\n")
    assert review(capsys, "--merge", "s1.json", "s1.sarif")[2] == (
        "stagecoder: error: the reports are of different formats (JSON and SARIF)\n")
    assert review(capsys, "--merge", "s1.json", "s2.json", "--format", "sarif")[2] == (
        "stagecoder: error: --merge writes the reports' own format (json), not sarif\n")
    with pytest.raises(SystemExit) as bad:
        review(capsys, "--shard", "3/2")
    assert bad.value.code == 2
    assert capsys.readouterr().err.endswith(
        "stagecoder review: error: argument --shard: 3/2: I must be between 1 and N\n")


def test_model_explanations_go_with_the_review_priority(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text(FLAGGED)
    with fake_in_thread(text="Shared between calls.\n```python\nx = None\n```\n") as chat:
        (tmp_path / "pyproject.toml").write_text(
            f'[tool.stagecoder.chat]\nurl = "{chat.url}"\nmodel = "fake-deepseek"\n')
        code, out, err = review(capsys, "a.py", "--model")
    assert (code, err) == (1, "")
    assert "Shared between calls." in out
    assert [b["priority"] for b in chat.bodies] == [10, 10]
