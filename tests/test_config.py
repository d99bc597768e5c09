"""The YAML config loader: positions, strict models, and one clear message per kind of bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field, model_validator

from mlplat.config import (
    ConfigModel,
    Duration,
    PositiveDuration,
    load_config,
    load_document,
    parse_yaml,
    validate_document,
)
from mlplat.errors import ConfigError


class Metric(ConfigModel):
    name: str
    tolerance: Annotated[float, Field(ge=0)] = 0.0


class Lambda(ConfigModel):
    kind: Literal["lambda"]
    memory_gb: float


class Knative(ConfigModel):
    kind: Literal["knative"]
    target_concurrency: int


class Demo(ConfigModel):
    alpha: Annotated[float, Field(gt=0, lt=1)]
    metrics: list[Metric] = []
    platforms: list[Annotated[Lambda | Knative, Field(discriminator="kind")]] = []

    @model_validator(mode="after")
    def _unique(self) -> Demo:
        names = [m.name for m in self.metrics]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ConfigError(f"duplicate metric name {name!r}", path=("metrics", index, "name"))
        return self


def write(tmp_path: Path, text: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    """A valid file becomes the model."""
    cfg = load_config(write(tmp_path, "alpha: 0.05\nmetrics:\n  - {name: errors, tolerance: 0.1}\n"), Demo)
    assert cfg.alpha == 0.05
    assert cfg.metrics[0].tolerance == 0.1


def test_typo_key_points_at_key_and_suggests(tmp_path: Path) -> None:
    """An unknown key is an error at its own line and column, with the closest valid name."""
    path = write(tmp_path, "alpha: 0.05\nmetrics:\n  - name: errors\n    tolerence: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:4:5: metrics\[0\]\.tolerence: unknown key "
                                          r"'tolerence'; did you mean 'tolerance'\?"):
        load_config(path, Demo)


def test_wrong_type_names_value(tmp_path: Path) -> None:
    """A value of the wrong type is reported at the value with what was given."""
    path = write(tmp_path, "alpha: lots\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:1:8: alpha: Input should be a valid number.*got 'lots'"):
        load_config(path, Demo)


def test_range_violation(tmp_path: Path) -> None:
    """A number out of range names the rule and the value."""
    path = write(tmp_path, "alpha: 0.05\nmetrics: [{name: e, tolerance: -0.1}]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:2:32: metrics\[0\]\.tolerance: .*>= 0.*got -0\.1"):
        load_config(path, Demo)


def test_non_finite_number(tmp_path: Path) -> None:
    """A field that refuses inf/NaN says so the way STYLE.md writes rules."""

    class Finite(ConfigModel):
        x: Annotated[float, Field(allow_inf_nan=False)]

    path = write(tmp_path, "x: .nan\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:1:4: x: must be a finite number, got nan"):
        load_config(path, Finite)


def test_missing_field_points_at_parent(tmp_path: Path) -> None:
    """A required key that is absent is reported at the mapping that lacks it."""
    path = write(tmp_path, "alpha: 0.05\nmetrics:\n  - tolerance: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3:5: metrics\[0\]\.name: required key is missing"):
        load_config(path, Demo)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    """Broken YAML gives the line and column of the problem."""
    path = write(tmp_path, "alpha: 0.05\nmetrics: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3:1: YAML syntax error"):
        load_config(path, Demo)


def test_nesting_too_deep_for_the_parser(tmp_path: Path) -> None:
    """Hundreds of nested lists exhaust PyYAML's recursion; that is a config error, not a crash."""
    path = write(tmp_path, "alpha: " + "[" * 1000 + "]" * 1000 + "\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: nested too deeply to read"):
        load_config(path, Demo)


def test_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """Twelve levels of nine aliases (400 bytes, "billion laughs") stand for 3.6e11 values: walking them
    hung `validate` for minutes. It is refused from the composed nodes, each counted once; a few ordinary
    aliases still load."""
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 12):
        prev, name = chr(96 + i), chr(97 + i)
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    with pytest.raises(ConfigError, match=r"c\.yaml: its aliases expand to 357,449,882,119 values, more than "
                                          r"the 200,000 a config may hold"):
        load_config(write(tmp_path, text), Demo)
    doc = parse_yaml("base: &b {x: 1}\none: *b\ntwo: *b\n")
    assert doc.data == {"base": {"x": 1}, "one": {"x": 1}, "two": {"x": 1}}


def test_empty_file(tmp_path: Path) -> None:
    """An empty file says so."""
    with pytest.raises(ConfigError, match=r"c\.yaml: the file is empty; expected a YAML mapping"):
        load_config(write(tmp_path, ""), Demo)


def test_comment_only_file_is_empty(tmp_path: Path) -> None:
    """A file with only comments is empty too."""
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(write(tmp_path, "# nothing\n"), Demo)


def test_binary_file(tmp_path: Path) -> None:
    """A binary file is refused before YAML sees it."""
    with pytest.raises(ConfigError, match=r"c\.yaml: is a binary file"):
        load_config(write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00"), Demo)


def test_non_utf8_file(tmp_path: Path) -> None:
    """Latin-1 text is refused with the offset of the bad byte."""
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(bad byte at offset 7\)"):
        load_config(write(tmp_path, b"alpha: \xe9\n"), Demo)


def test_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is named."""
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load_config(tmp_path / "nope.yaml", Demo)


def test_top_level_list(tmp_path: Path) -> None:
    """The top level must be a mapping."""
    with pytest.raises(ConfigError, match=r"c\.yaml:1:1: expected a YAML mapping at the top level, got a list"):
        load_config(write(tmp_path, "- 1\n- 2\n"), Demo)


def test_duplicate_key(tmp_path: Path) -> None:
    """A key given twice is an error (safe_load would silently keep the last)."""
    with pytest.raises(ConfigError, match=r"c\.yaml:2:1: <top>: duplicate key 'alpha'"):
        load_config(write(tmp_path, "alpha: 0.1\nalpha: 0.2\n"), Demo)


def test_validator_error_with_path(tmp_path: Path) -> None:
    """A ConfigError raised with a path inside a validator is located in the file."""
    path = write(tmp_path, "alpha: 0.1\nmetrics:\n  - name: a\n  - name: a\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:4:11: metrics\[1\]\.name: duplicate metric name 'a'"):
        load_config(path, Demo)


def test_discriminated_union_error(tmp_path: Path) -> None:
    """Errors inside a tagged variant skip the tag in the path and still find the position."""
    path = write(tmp_path, "alpha: 0.1\nplatforms:\n  - {kind: lambda, memroy_gb: 3}\n")
    expected = r"c\.yaml:3:20: platforms\[0\]\.memroy_gb: unknown key .*did you mean .memory_gb.\?"
    with pytest.raises(ConfigError, match=expected):
        load_config(path, Demo)


def test_key_of_another_variant(tmp_path: Path) -> None:
    """A key that belongs to another variant is unknown for this one, with this variant's keys listed."""
    path = write(tmp_path, "alpha: 0.1\nplatforms:\n  - {kind: knative, target_concurrency: 4, memory_gb: 3}\n")
    expected = (r"platforms\[0\]\.memory_gb: unknown key 'memory_gb'; "
                r"expected one of: kind, target_concurrency$")
    with pytest.raises(ConfigError, match=expected):
        load_config(path, Demo)


def test_unknown_variant(tmp_path: Path) -> None:
    """An unknown `kind` lists the allowed tags."""
    path = write(tmp_path, "alpha: 0.1\nplatforms:\n  - {kind: lambada}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3:5: platforms\[0\]: .*'lambda', 'knative'"):
        load_config(path, Demo)


def test_document_error_helper() -> None:
    """Later checks can locate their own errors with YamlDocument.error."""
    doc = parse_yaml("a:\n  b: [1, 2]\n", source="x.yaml")
    assert str(doc.error(("a", "b", 1), "too big")) == "x.yaml:2:10: a.b[1]: too big"


def test_load_document_then_validate(tmp_path: Path) -> None:
    """Parsing and validating can be done in two steps."""
    doc = load_document(write(tmp_path, "alpha: 0.2\n"))
    assert validate_document(doc, Demo).alpha == 0.2


class Timed(ConfigModel):
    warmup: Duration = 0.0
    duration: PositiveDuration


def test_duration_types_parse_units(tmp_path: Path) -> None:
    """Duration fields take '10m' or seconds; a PositiveDuration must be > 0; nonsense names the forms."""
    assert load_config(write(tmp_path, "duration: 1h30m\nwarmup: 90\n"), Timed).duration == 5400.0
    with pytest.raises(ConfigError, match=r"c\.yaml:1:11: duration: must be > 0, got '0s'"):
        load_config(write(tmp_path, "duration: 0s\n"), Timed)
    with pytest.raises(ConfigError,
                       match=r"c\.yaml:2:9: warmup: expected a duration from 0 to 100 years such as '90s'.*got 'soon'"):
        load_config(write(tmp_path, "duration: 1d\nwarmup: soon\n"), Timed)
    # A YAML list or null is refused with the same message, not a traceback.
    forms = r"expected a duration from 0 to 100 years such as '90s', '10m', '1h30m' or '1d'"
    with pytest.raises(ConfigError, match=r"c\.yaml:2:9: warmup: " + forms):
        load_config(write(tmp_path, "duration: 1d\nwarmup: [1, 2]\n"), Timed)
    with pytest.raises(ConfigError, match=r"c\.yaml:1:11: duration: expected a duration from 0 to 100 years"):
        load_config(write(tmp_path, "duration: null\n"), Timed)


class Shapes(ConfigModel):
    """Every shape a number takes in the config models: plain, optional, text-or-number, in lists and maps."""

    flag: bool = False
    count: int | None = None
    limit: float | str = 1.0
    sizes: list[int] = []
    pair: tuple[float, str] = (1.0, "a")
    weights: dict[str, dict[str, float]] = {}
    lambda_: Annotated[float, Field(alias="lambda")] = 1.0
    window: Duration = 60.0
    platforms: list[Annotated[Lambda | Knative, Field(discriminator="kind")]] = []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count: true\n", r"c\.yaml:1:8: count: expected a number, got true"),
        ("limit: false\n", r"c\.yaml:1:8: limit: expected a number, got false"),
        ("sizes: [1, true]\n", r"c\.yaml:1:12: sizes\[1\]: expected a number, got true"),
        ("pair: [true, b]\n", r"c\.yaml:1:8: pair\[0\]: expected a number, got true"),
        ("weights: {a: {b: 2, c: true}}\n", r"c\.yaml:1:24: weights\.a\.c: expected a number, got true"),
        ("lambda: true\n", r"c\.yaml:1:9: lambda: expected a number, got true"),
        ("window: true\n", r"c\.yaml:1:9: window: expected a number, got true"),
        ("platforms: [{kind: knative, target_concurrency: true}]\n",
         r"c\.yaml:1:49: platforms\[0\]\.target_concurrency: expected a number, got true"),
    ],
    ids=["optional-int", "number-or-text", "list", "tuple", "nested-map", "alias", "duration", "tagged-variant"],
)
def test_yaml_bool_where_a_number_belongs(tmp_path: Path, text: str, expected: str) -> None:
    """YAML's true/false in a number's place is refused at its place: pydantic would read it as 1 or 0."""
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text), Shapes)


def test_yaml_bools_are_all_listed_and_kept_where_bools_belong(tmp_path: Path) -> None:
    """Each misplaced bool gets its own line; a bool field, and a bool in a key the model lacks, are left alone."""
    with pytest.raises(ConfigError, match=r"(?s)1:8: count: .*got true\n.*2:9: sizes\[0\]: .*got false"):
        load_config(write(tmp_path, "count: true\nsizes: [false]\nflag: true\n"), Shapes)
    assert load_config(write(tmp_path, "flag: true\ncount: 3\n"), Shapes).flag is True
    with pytest.raises(ConfigError, match=r"c\.yaml:1:1: typo: unknown key 'typo'"):
        load_config(write(tmp_path, "typo: true\n"), Shapes)


def test_a_model_built_in_python_refuses_a_bool_for_a_number_too() -> None:
    """Built with model_validate or assigned, True where a number belongs is refused, nested places named
    (the rubric's own validators did this for its API before the loader's walk replaced them)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"platforms\[0\]\.target_concurrency: expected a number, got true"):
        Shapes.model_validate({"platforms": [{"kind": "knative", "target_concurrency": True}]})
    shapes = Shapes.model_validate({"count": 3, "flag": True})
    with pytest.raises(ValidationError, match=r"count: expected a number, got false"):
        shapes.count = False  # type: ignore[assignment]
    assert shapes.count == 3
