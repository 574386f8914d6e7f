"""The one pyproject loader: which file is read, what a bad file or key says, editor layering."""

from __future__ import annotations

from pathlib import Path

from analysis.project import editor_settings, load_project
from analysis.settings import SettingsProblem


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_nearest_pyproject_with_the_section_wins(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "pyproject.toml": '[tool.stagecoder]\nselect = ["SC3"]\nexclude = ["gen/"]\n'
                          "max-file-bytes = 100\n"
                          '[tool.stagecoder.per-path-ignores]\n"tests/**" = ["SC305"]\n',
        "pkg/pyproject.toml": "[project]\nname = 'inner'\n",  # no section: passed over
    })
    project = load_project(tmp_path / "pkg")
    assert (project.root, project.config, project.problems) == (
        tmp_path, tmp_path / "pyproject.toml", [])
    review = project.settings.review
    assert review.select == ["SC3"] and review.exclude == ["gen/"]
    assert review.per_path_ignores == {"tests/**": ["SC305"]}
    assert project.settings.max_file_bytes == 100


def test_review_keys_in_their_own_table_win_over_top_level_ones(tmp_path: Path) -> None:
    _tree(tmp_path, {"pyproject.toml": '[tool.stagecoder]\nselect = ["SC1"]\nignore = ["SC2"]\n'
                                       '[tool.stagecoder.review]\nselect = ["SC3"]\n'})
    review = load_project(tmp_path).settings.review
    assert (review.select, review.ignore) == (["SC3"], ["SC2"])


def test_no_pyproject_means_defaults_rooted_at_the_start(tmp_path: Path) -> None:
    project = load_project(tmp_path)
    assert (project.root, project.config, project.problems, project.failed) == (
        tmp_path, None, [], False)


def test_bad_keys_and_bad_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.stagecoder.review]\nselect = "SC1"\n')
    project = load_project(tmp_path)
    assert project.problems == [
        f"{path}: [tool.stagecoder] `review.select`: Expected `array`, got `str`"]
    assert project.bad_keys == [SettingsProblem("review.select", "Expected `array`, got `str`")]
    assert not project.failed and project.settings.review.select == []
    path.write_text("[tool.stagecoder\n")
    broken = load_project(tmp_path)
    assert broken.failed and broken.problems == [
        f"{path}: cannot read settings (Expected ']' at the end of a table declaration "
        "(at line 1, column 17))"]
    path.write_text("[tool]\nstagecoder = 1\n")
    assert load_project(tmp_path).problems == [f"{path}: `tool.stagecoder` is not a table"]


def test_a_named_config_is_read_even_without_the_section(tmp_path: Path) -> None:
    config = tmp_path / "ci.toml"
    config.write_text("[project]\nname = 'x'\n")
    project = load_project(tmp_path / "elsewhere", config)
    assert (project.config, project.problems, project.settings.review.select) == (config, [], [])


def test_the_editor_layers_over_the_project_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.stagecoder]\nselect = ["SC3"]\nmax-file-bytes = 100\n'
        '[tool.stagecoder.completion]\nmax-tokens = "many"\n')
    init = {"maxFileBytes": 200, "completion": {"url": "http://gpu:8000"}}
    config = {"review": {"ignore": ["SC305"]}, "completion": {"temperature": "hot"}}
    settings, problems = editor_settings(tmp_path / "sub", [init, None, config])
    assert settings.max_file_bytes == 200  # the editor wins
    assert settings.review.select == ["SC3"] and settings.review.ignore == ["SC305"]
    assert settings.completion.url == "http://gpu:8000"
    where = f"{tmp_path}/pyproject.toml [tool.stagecoder]"
    assert problems == [  # sorted by key, the file's path first
        SettingsProblem(f"{where} completion.maxTokens", "Expected `int`, got `str`"),
        SettingsProblem("completion.temperature", "Expected `float`, got `str`"),
    ]
    assert editor_settings(None, [init])[0].max_file_bytes == 200  # no workspace root
