"""Naming stage: unknown names are repaired or flagged; new names follow the file's style."""

from __future__ import annotations

from analysis.documents.document import Document
from analysis.scope.names import KnownNames
from tests.generation.completion.stages.helpers import staged

PY = '''import os


def load_config(config_path):
    with open(config_path) as handle:
        return handle.read()


def main(base_dir):
    full_path = os.path.join(base_dir, "app.toml")
█
'''


def test_hallucinated_name_is_repaired_to_closest_in_scope():
    cand = staged(PY, "python", "    return load_config(ful_path)\n")
    assert cand.text == "    return load_config(full_path)"
    naming = next(d for d in cand.decisions if d.stage == "naming")
    assert naming.action == "repaired" and "ful_path -> full_path" in naming.detail
    assert cand.names_resolve


def test_unknown_name_without_close_match_is_flagged():
    cand = staged(PY, "python", "    return frobnicate_widgets(full_path)\n")
    naming = next(d for d in cand.decisions if d.stage == "naming")
    assert naming.action == "unresolved" and "frobnicate_widgets" in naming.detail
    assert not cand.names_resolve


def test_names_defined_by_the_completion_and_builtins_resolve():
    raw = "    parts = sorted(os.listdir(base_dir))\n    return [p for p in parts if p]\n"
    cand = staged(PY, "python", raw)
    naming = next(d for d in cand.decisions if d.stage == "naming")
    assert naming.action == "kept", naming.detail


def test_new_names_follow_file_convention_python():
    cand = staged(PY, "python", "    configText = load_config(full_path)\n    return configText\n")
    assert cand.text == "    config_text = load_config(full_path)\n    return config_text"


def test_new_names_follow_file_convention_javascript():
    src = ("function loadUserName(userId) {\n  const userRecord = db.find(userId);\n"
           "  return userRecord.name;\n}\n\nfunction showUser(userId) {\n█\n}\n")
    cand = staged(src, "javascript", "  const user_name = loadUserName(userId);\n"
                  "  console.log(user_name);\n}\n")
    assert cand.text == "  const userName = loadUserName(userId);\n  console.log(userName);"


def test_go_and_rust_unknown_names():
    go = ("package m\n\nimport \"fmt\"\n\nfunc greet(name string) string {\n"
          "\treturn fmt.Sprintf(\"hi %s\", name)\n}\n\nfunc main() {\n\tuser := \"ana\"\n█\n}\n")
    cand = staged(go, "go", "\tfmt.Println(greet(usr))\n}\n")
    assert cand.text == "\tfmt.Println(greet(user))"
    rust = ("fn total(values: &[i32]) -> i32 {\n    values.iter().sum()\n}\n\n"
            "fn main() {\n    let numbers = vec![1, 2, 3];\n█\n}\n")
    cand = staged(rust, "rust", "    println!(\"{}\", totl(&numbrs));\n}\n")
    assert cand.text == "    println!(\"{}\", total(&numbers));"


def test_naming_off_by_setting():
    cand = staged(PY, "python", "    return load_config(ful_path)\n", naming=False)
    assert cand.text == "    return load_config(ful_path)"
    assert all(d.stage != "naming" for d in cand.decisions)


def test_repair_never_reaches_into_another_function():
    src = ("def first(token_count):\n    return token_count\n\n\n"
           "def second(items):\n█\n")
    cand = staged(src, "python", "    return token_cout + len(items)\n")
    naming = next(d for d in cand.decisions if d.stage == "naming")
    # `token_count` is one edit away but is a parameter of `first`, not visible in `second`.
    assert naming.action == "unresolved" and "token_cout" in naming.detail
    assert cand.text == "    return token_cout + len(items)"
    assert not cand.names_resolve


def test_known_names_cache_is_bounded_in_bytes_and_forgets_closed_documents():
    names = KnownNames(limit_bytes=50_000)
    docs = [Document(f"file:///n{i}.py", " ".join(f"name_{i}_{k}" for k in range(200)), "python")
            for i in range(20)]
    for doc in docs:
        assert f"name_{doc.uri[9:-3]}_7" in names.file_names(doc)
        assert names.size_bytes <= 50_000 or len(names) == 1
    assert 1 <= len(names) < len(docs)  # the oldest documents were evicted
    before = names.size_bytes
    names.forget(docs[-1].uri)
    assert names.size_bytes < before and len(names) == len(set(names._cache))
    assert docs[-1].uri not in names._cache
