from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci.errors import EXIT_USAGE, ConfigError
from mlci.settings import config


def write(tmp_path: Path, text: str, name: str = "params.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    s = config.load(tmp_path, env={})
    assert s.report_name == "mlci"
    assert s.gates == ()
    assert s.tracking_uri == f"sqlite:///{tmp_path / '.mlci' / 'mlflow.db'}"


def test_params_section_then_env_then_flags(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mlci:\n  report_name: from-file\n  model_name: m1\n  comment: false\n"
        "  gates:\n    accuracy: {direction: higher, abs_tol: 0.01}\n"
        "    loss: lower\n",
    )
    s = config.load(
        tmp_path,
        env={"MLCI_MODEL_NAME": "m2", "MLCI_COMMENT": "yes"},
        flags={"report_name": "from-flag"},
    )
    assert s.report_name == "from-flag"
    assert s.model_name == "m2"
    assert s.comment is True
    assert s.gates == (
        config.Gate("accuracy", "higher", abs_tol=0.01),
        config.Gate("loss", "lower"),
    )


def test_pyproject_tool_section(tmp_path: Path) -> None:
    write(tmp_path, '[tool.mlci]\nreport_name = "py"\n', "pyproject.toml")
    assert config.load(tmp_path, env={}).report_name == "py"


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = config.load(tmp_path, env={})
    with pytest.raises(AttributeError):
        s.report_name = "x"  # type: ignore[misc]


def test_unknown_key_suggests(tmp_path: Path) -> None:
    write(tmp_path, "mlci:\n  gatess: {}\n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path, env={})
    assert "unknown key 'gatess'" in err.value.message
    assert "did you mean 'gates'" in err.value.one_line()
    assert err.value.exit_code == EXIT_USAGE


def test_unknown_gate_key_suggests(tmp_path: Path) -> None:
    write(tmp_path, "mlci:\n  gates:\n    acc: {direction: higher, abs_tolerance: 1}\n")
    with pytest.raises(ConfigError, match="abs_tolerance") as err:
        config.load(tmp_path, env={})
    assert "abs_tol" in err.value.one_line()


@pytest.mark.parametrize(
    "gate, needle",
    [
        ("{direction: up}", "not a direction"),
        ("{abs_tol: -1}", "negative"),
        ("{abs_tol: lots}", "expected a number"),
        ("[1, 2]", "expected a mapping"),
    ],
)
def test_bad_gates(tmp_path: Path, gate: str, needle: str) -> None:
    write(tmp_path, f"mlci:\n  gates:\n    acc: {gate}\n")
    with pytest.raises(ConfigError, match=needle):
        config.load(tmp_path, env={})


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "train:\n  a: 1\n mlci: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path, env={})
    assert "params.yaml line" in err.value.message


def test_bad_bool_in_env(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MLCI_COMMENT"):
        config.load(tmp_path, env={"MLCI_COMMENT": "perhaps"})


def test_github_api_url_from_env_and_setting(tmp_path: Path) -> None:
    assert (
        config.load(tmp_path, env={"GITHUB_API_URL": "http://ghes/api/v3"}).github_api_url
        == "http://ghes/api/v3"
    )
    write(tmp_path, "mlci:\n  github_api_url: http://mine\n")
    assert (
        config.load(tmp_path, env={"GITHUB_API_URL": "http://ghes"}).github_api_url == "http://mine"
    )


def test_drift_and_pii_are_typed_when_settings_load(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mlci:\n  drift: {psi: '0.3', fail: 'false', exclude: [id]}\n  pii: {block: 'yes'}\n",
    )
    s = config.load(tmp_path, env={})
    assert s.drift.psi == 0.3 and s.drift.fail is False and s.drift.exclude == ("id",)
    assert s.pii.block is True and s.pii.allow == ()
    for bad, message in (
        ("drift: {psii: 0.2}", "did you mean 'psi'"),
        ("drift: {fail: maybe}", "expected true or false"),
        ("drift: {psi: high}", "expected a number"),
        ("drift: {exclude: id}", "expected a list"),
        ("pii: {blok: true}", "did you mean 'block'"),
        ("pii: {allow: email}", "expected a list"),
    ):
        write(tmp_path, f"mlci:\n  {bad}\n")
        with pytest.raises(ConfigError) as err:
            config.load(tmp_path, env={})
        assert message in err.value.one_line(), bad


@pytest.mark.parametrize("name", ["it's", 'say "hi"', "a\\b", "tab\there", "  "])
def test_a_model_name_mlflow_cannot_quote_is_refused(tmp_path: Path, name: str) -> None:
    write(tmp_path, f"mlci:\n  model_name: {json.dumps(name)}\n")  # JSON: a YAML string
    with pytest.raises(ConfigError, match="cannot be looked up in the MLflow registry"):
        config.load(tmp_path, env={})
    assert config.load(tmp_path, env={"MLCI_MODEL_NAME": "churn model v2"}).model_name
