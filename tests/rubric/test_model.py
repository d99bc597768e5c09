"""Rubric file validation: every bad input named in issue 3 is an error at file:line:col with the key path."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mlplat.errors import ConfigError
from mlplat.rubric import Rubric, load_rubric, pairwise_matrix, parse_start

AHP = """\
weights_ahp:
  cost: {speed: 2, fit: 3}
  speed: {fit: 2}
"""


def _no_weights(text: str) -> str:
    return text.replace(", weight: 0.5", "").replace(", weight: 0.3", "").replace(", weight: 0.2", "")


def test_base_is_valid(write_rubric: Callable[..., Path]) -> None:
    """The shared fixture loads, with the TCO criterion unscored in options."""
    rubric = load_rubric(write_rubric())
    assert rubric.option_ids == ["build", "buy", "hybrid"]
    assert rubric.criterion_ids == ["cost", "speed", "fit"]


def test_option_and_criterion_by_id(write_rubric: Callable[..., Path]) -> None:
    """Rubric.option and Rubric.criterion return the entry with that id."""
    rubric = load_rubric(write_rubric())
    assert rubric.option("buy") is rubric.options[1]
    assert rubric.criterion("fit") is rubric.criteria[2]


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        (("scores: {speed: 5, fit: 2}", "scores: {speed: 5, fit: 2, sped: 1}"),
         r"r\.yaml:10:38: options\[1\]\.scores\.sped: unknown criterion 'sped'"),
        (("scores: {speed: 5, fit: 2}", "scores: {speed: 5}"),
         r"r\.yaml:10:13: options\[1\]\.scores: missing score for criterion 'fit'"),
        (("weight: 0.3", "weight: -0.3"),
         r"r\.yaml:4:45: criteria\[1\]\.weight: must be >= 0\.0, got -0\.3"),
        (("id: buy", "id: build"),
         r"r\.yaml:9:9: options\[1\]\.id: duplicate id 'build' \(also at options\[0\]\)"),
        (("{id: fit,", "{id: speed,"),
         r"r\.yaml:5:10: criteria\[2\]\.id: duplicate id 'speed'"),
        (("discount_rate: 0.1", "discount_rat: 0.1"),
         r"r\.yaml:14:3: tco\.discount_rat: unknown key 'discount_rat'; did you mean 'discount_rate'\?"),
        (("{name: build, year: 0,", "{name: build, year: 4,"),
         r"r\.yaml:18:29: tco\.options\.build\[0\]\.year: year 4 is outside the horizon 0\.\.3"),
        (("years: [1, 2, 3], amount: 120", "years: [1, 2, 5], amount: 120"),
         r"r\.yaml:25:28: tco\.options\.hybrid\[1\]\.years: year 5 is outside the horizon 0\.\.3"),
        # It counted the cost once per listing.
        (("years: [1, 2, 3], amount: 120", "years: [1, 1, 2], amount: 120"),
         r"r\.yaml:25:28: tco\.options\.hybrid\[1\]\.years: lists year 1 more than once, which would count "
         r"the cost again"),
        (("probability: 0.3", "probability: 1.3"),
         r"r\.yaml:20:60: tco\.options\.build\[2\]\.probability: must be <= 1\.0, got 1\.3"),
        (("probability: 0.3", "probability: -0.1"),
         r"r\.yaml:20:60: tco\.options\.build\[2\]\.probability: must be >= 0\.0, got -0\.1"),
        (("{low: 2, mode: 3, high: 4}", "{low: 2, mode: 5, high: 4}"),
         r"r\.yaml:8:29: options\[0\]\.scores\.fit.*low <= mode <= high"),
        (("    buy:\n", "    biy:\n"),
         r"r\.yaml:22:7: tco\.options\.biy: unknown option 'biy'"),
        (("scores: {speed: 3,", "scores: {cost: 1, speed: 3,"),
         r"r\.yaml:8:20: options\[0\]\.scores\.cost: criterion 'cost' is computed from the `tco` section"),
        (("title: Serving platform\n", "title: Serving platform\nmethod: ahp\n"),
         r"r\.yaml:2:9: method: Input should be 'wsm' or 'topsis'"),
        (("weight: 0.3", "weight: .inf"),
         r"r\.yaml:4:45: criteria\[1\]\.weight: must be a finite number, got inf"),
        (("scores: {speed: 5, fit: 2}", "scores: {speed: .nan, fit: 2}"),
         r"r\.yaml:10:21: options\[1\]\.scores\.speed: must be a finite number, got nan\n"
         r".*r\.yaml:10:21: options\[1\]\.scores\.speed: Input should be a valid dictionary or instance of "
         r"Triangular"),
        (("scores: {speed: 5, fit: 2}", "scores: {speed: 1e308, fit: 2}"),
         r"r\.yaml:10:21: options\[1\]\.scores\.speed: must be <= 1e\+15, got '1e308'"),
        (("year: 0, amount: 300", "year: 0, amount: -2.0e+15"),
         r"r\.yaml:18:40: tco\.options\.build\[0\]\.amount: must be >= -1e\+15, got -2e\+15"),
        (("{low: 2, mode: 3, high: 4}", "{low: 2, mode: 3, high: .inf}"),
         r"r\.yaml:8:53: options\[0\]\.scores\.fit\.high: must be a finite number, got inf"),
        (("year: 0, amount: 300", "year: 0, amount: .nan"),
         r"r\.yaml:18:40: tco\.options\.build\[0\]\.amount: must be a finite number, got nan"),
        (("title: Serving platform\n", "title: Serving platform\nsensitivity: {seed: -1}\n"),
         r"r\.yaml:2:21: sensitivity\.seed: must be >= 0, got -1"),
        (("{id: cost, direction: cost,", "{id: cost, direction: benefit,"),
         r"r\.yaml:3:27: criteria\[0\]\.direction: a `source: tco` criterion is a cost"),
        (("  - id: buy\n    scores: {speed: 5, fit: 2}\n  - id: hybrid\n    scores: {speed: 4, fit: 4}\n", ""),
         r"r\.yaml:7:3: options: must have at least 2 entries, got 1"),
        # YAML's true was read as 1 (found by a review pass).
        (("weight: 0.3", "weight: true"), r"r\.yaml:4:45: criteria\[1\]\.weight: expected a number, got true"),
        (("scores: {speed: 5, fit: 2}", "scores: {speed: true, fit: 2}"),
         r"r\.yaml:10:21: options\[1\]\.scores\.speed: expected a number, got true"),
        (("{low: 2, mode: 3, high: 4}", "{low: 2, mode: false, high: 4}"),
         r"r\.yaml:8:\d+: options\[0\]\.scores\.fit\.mode: expected a number, got false"),
        (("year: 0, amount: 300", "year: 0, amount: true"),
         r"r\.yaml:18:40: tco\.options\.build\[0\]\.amount: expected a number, got true"),
    ],
    ids=["unknown-criterion", "missing-score", "negative-weight", "duplicate-option", "duplicate-criterion",
         "typo-key", "year-outside-horizon", "years-outside-horizon", "repeated-year", "probability-above-1",
         "probability-below-0", "triangular-order", "unknown-tco-option", "score-for-tco-criterion",
         "bad-method", "infinite-weight", "nan-score", "huge-score", "huge-amount", "infinite-triangular", "nan-amount",
         "negative-seed", "tco-as-benefit",
         "one-option", "true-weight", "true-score", "false-in-triangular", "true-amount"],
)
def test_bad_input(write_rubric: Callable[..., Path], replacement: tuple[str, str], expected: str) -> None:
    """Each bad input names file:line:col, the key path and the rule."""
    with pytest.raises(ConfigError, match=expected):
        load_rubric(write_rubric(replacement))


def test_all_zero_weights(write_rubric: Callable[..., Path]) -> None:
    """Weights that are all zero are an error at the first weight."""
    path = write_rubric(("weight: 0.5", "weight: 0"), ("weight: 0.3", "weight: 0"), ("weight: 0.2", "weight: 0"))
    with pytest.raises(ConfigError, match=r"r\.yaml:3:41: criteria\[0\]\.weight: weights are all zero"):
        load_rubric(path)


def test_weight_and_ahp_both_given(write_rubric: Callable[..., Path]) -> None:
    """`weight` on criteria and `weights_ahp` together are an error."""
    path = write_rubric(("options:\n", AHP + "options:\n"))
    with pytest.raises(ConfigError, match=r"r\.yaml:3:41: criteria\[0\]\.weight: give either `weight`"):
        load_rubric(path)


def test_missing_weight(write_rubric: Callable[..., Path]) -> None:
    """A criterion without a weight (and no AHP) is an error at that criterion."""
    with pytest.raises(ConfigError, match=r"r\.yaml:4:5: criteria\[1\]: every criterion needs a `weight`"):
        load_rubric(write_rubric((", weight: 0.3", "")))


def _ahp_file(write_rubric: Callable[..., Path], ahp: str) -> Path:
    from tests.rubric.conftest import BASE

    return write_rubric(("options:\n", ahp + "options:\n"), text=_no_weights(BASE))


@pytest.mark.parametrize(
    ("ahp", "expected"),
    [
        (AHP.replace("speed: 2,", "speed: 0,"),
         r"r\.yaml:7:17: weights_ahp\.cost\.speed: a judgement must be > 0, got 0"),
        (AHP.replace("speed: 2,", "speed: -2,"), r"r\.yaml:7:17: weights_ahp\.cost\.speed: a judgement must be > 0"),
        (AHP + "  fit: {speed: 2}\n",
         r"r\.yaml:9:16: weights_ahp\.fit\.speed: contradicts its reciprocal: speed\.fit is 2, so this must be 0\.5"),
        (AHP.replace("speed: {fit: 2}", "speed: {fitt: 2}"),
         r"r\.yaml:8:17: weights_ahp\.speed\.fitt: unknown criterion 'fitt'"),
        (AHP.replace("  speed: {fit: 2}\n", ""),
         r"r\.yaml:7:3: weights_ahp: no judgement for speed vs fit"),
        (AHP.replace("speed: 2,", "speed: two,"),
         r"r\.yaml:7:17: weights_ahp\.cost\.speed: a judgement must be a number or a fraction"),
        (AHP.replace("speed: 2,", "speed: true,"),
         r"r\.yaml:7:17: weights_ahp\.cost\.speed: expected a number, got true"),
        # Its reciprocal is inf: refused later, by the eigenvector step, with no file or place.
        (AHP.replace("speed: 2,", "speed: '1e-320',"),
         r"r\.yaml:7:17: weights_ahp\.cost\.speed: a judgement must be from 1e-09 to 1e\+09 \(Saaty's scale runs "
         r"from 1/9 to 9\), got 1e-320"),
        # The eigenvector solver broke down: a negative consistency ratio passed --strict (a review pass).
        (AHP.replace("speed: 2,", "speed: 1.0e+300,"),
         r"r\.yaml:7:17: weights_ahp\.cost\.speed: a judgement must be from 1e-09 to 1e\+09 .*got 1e\+300"),
    ],
    ids=["zero", "negative", "contradicts-reciprocal", "unknown", "missing-pair", "not-a-number", "true", "tiny",
         "huge"],
)
def test_bad_ahp(write_rubric: Callable[..., Path], ahp: str, expected: str) -> None:
    """Bad Saaty judgements are errors at the judgement."""
    with pytest.raises(ConfigError, match=expected):
        load_rubric(_ahp_file(write_rubric, ahp))


def test_ahp_fraction_and_consistent_reciprocal(write_rubric: Callable[..., Path]) -> None:
    """'1/2' is accepted, and a mirror entry equal to the reciprocal (to 1%) is not a contradiction."""
    rubric = load_rubric(_ahp_file(write_rubric, AHP + "  fit: {speed: 1/2, cost: 0.333}\n"))
    assert rubric.weights_ahp is not None
    matrix = pairwise_matrix(rubric.weights_ahp, rubric.criterion_ids)
    assert matrix[2][1] == pytest.approx(0.5)
    assert matrix[1][2] == pytest.approx(2.0)


def test_cash_flow_shape(write_rubric: Callable[..., Path]) -> None:
    """A cash flow needs exactly one of year/years and one of amount or unit_price with volume."""
    with pytest.raises(ConfigError, match=r"r\.yaml:18:29: tco\.options\.build\[0\]\.year: give exactly one"):
        load_rubric(write_rubric(("{name: build, year: 0,", "{name: build, year: 0, years: [1],")))
    with pytest.raises(ConfigError, match=r"amount: give either `amount` or `unit_price` with `volume`"):
        load_rubric(write_rubric(("{name: build, year: 0, amount: 300}", "{name: build, year: 0}")))
    with pytest.raises(ConfigError, match=r"unit_price: a volume-based fee needs both"):
        load_rubric(write_rubric(("unit_price: 0.001, volume: 100000", "unit_price: 0.001")))


def test_tco_source_needs_tco_section(write_rubric: Callable[..., Path]) -> None:
    """`source: tco` without a tco section is an error at the criterion's source."""
    from tests.rubric.conftest import BASE

    text = BASE[: BASE.index("tco:\n  discount_rate")]
    with pytest.raises(ConfigError, match=r"r\.yaml:3:54: criteria\[0\]\.source: `source: tco` needs a `tco`"):
        load_rubric(write_rubric(text=text))


def test_option_without_cash_flows(write_rubric: Callable[..., Path]) -> None:
    """With a TCO criterion, every option needs cash flows."""
    path = write_rubric(("    hybrid:\n      - {name: setup, year: 0, amount: 150}\n"
                         "      - {name: run, years: [1, 2, 3], amount: 120}\n", ""))
    with pytest.raises(ConfigError, match=r"r\.yaml:11:9: options\[2\]\.id: option 'hybrid' has no cash flows"):
        load_rubric(path)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    """Unreadable input is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.yaml'}: no such file")):
        load_rubric(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: [\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_rubric(bad)


def test_model_validate_without_file() -> None:
    """Validating a dict directly raises ConfigError with the key path (no file position)."""
    with pytest.raises(ConfigError, match=r"options\[1\]\.scores: missing score for criterion 'a'"):
        Rubric.model_validate({"title": "t", "criteria": [{"id": "a", "direction": "cost", "weight": 1}],
                               "options": [{"id": "x", "scores": {"a": 1}}, {"id": "y"}]})


def test_parse_start() -> None:
    """--start takes ISO dates only."""
    assert parse_start(None) is None
    assert str(parse_start("2026-12-01")) == "2026-12-01"
    with pytest.raises(ConfigError, match="--start must be a date as YYYY-MM-DD, got 'tomorrow'"):
        parse_start("tomorrow")


def test_the_python_api_refuses_true_for_a_number() -> None:
    """Rubric.model_validate (a documented way to a validated rubric) refuses True for a weight, as a file
    does; it was accepted as 1 once the file loader took over the check (found by the diff review)."""
    import yaml
    from pydantic import ValidationError

    example = Path(__file__).resolve().parents[2] / "examples" / "rubric" / "serving-platform.yaml"
    data = yaml.safe_load(example.read_text())
    data["criteria"][0]["weight"] = True
    with pytest.raises(ValidationError, match=r"criteria\[0\]\.weight: expected a number, got true"):
        Rubric.model_validate(data)
