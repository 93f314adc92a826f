"""Cost formulas: a small arithmetic grammar, parsed and evaluated without `eval`."""

import numpy as np
import pandas as pd
import pytest

from propensity_assets.incentives.costs import CostFormula, CostFormulaError

DATA = pd.DataFrame({"PC Count": [1, 2, 3], "Size": [10.0, 20.0, 30.0]})


@pytest.mark.parametrize(
    "text, columns, expected",
    [
        ("7000", (), [7000.0, 7000.0, 7000.0]),
        ("100 * `PC Count`", ("PC Count",), [100.0, 200.0, 300.0]),
        # Precedence: * and / before + and -, left to right; unary minus; parentheses.
        ("1 + 2 * 3 - 4 / 2", (), [5.0, 5.0, 5.0]),
        ("-(`Size` - 5) / 2", ("Size",), [-2.5, -7.5, -12.5]),
        ("8 / 4 / 2", (), [1.0, 1.0, 1.0]),
        # One column named twice (pandas' eval crashed on this).
        ("`PC Count` * `PC Count` + `PC Count`", ("PC Count",), [2.0, 6.0, 12.0]),
        ("max(`PC Count` * 100, 250) + min(`Size`, 15, 12)", ("PC Count", "Size"), [260.0, 262.0, 312.0]),
        ("100 × `PC Count` ÷ 2 − 1", ("PC Count",), [49.0, 99.0, 149.0]),
        ("1.5e3 * .5", (), [750.0, 750.0, 750.0]),
    ],
)
def test_formulas_evaluate_by_the_grammar(text, columns, expected):
    formula = CostFormula.parse(text)
    assert formula.columns == columns
    assert formula.evaluate(DATA).tolist() == expected


def test_a_constant_formula_has_its_value():
    assert CostFormula.parse("7000").constant == 7000.0
    assert CostFormula.parse("2 * (3 + 4)").constant == 14.0
    assert CostFormula.parse("100 * `PC Count`").constant is None


@pytest.mark.parametrize(
    "text, message",
    [
        # What pandas' DataFrame.eval ran: method calls, attributes, imports.
        ("`PC Count`.to_csv('out.csv')", "unexpected '.to_csv' at character 11"),
        ("`PC Count`.__class__", "unexpected '.__class__' at character 11"),
        ("__import__", "unexpected '__import__' at character 1: only min(...) and max(...) may be called, "
                       "and columns are named in backticks"),
        ("abs(-3)", "unexpected 'abs' at character 1: only min(...) and max(...) may be called, "
                    "and columns are named in backticks"),
        ("`PC Count`[0]", "unexpected '[0]' at character 11"),
        ("'7000'", "unexpected \"'7000'\" at character 1"),
        ("1 2", "unexpected '2' at character 3"),
        ("1 +", "unexpected the end of the formula at character 4"),
        ("(1", "expected ')' at character 3, found the end of the formula"),
        ("max()", "unexpected ')' at character 5"),
        ("1e400", "the number 1e400 is not finite (costs must be finite)"),
        ("", "empty: expected a number or a formula such as \"100 * `PC Count`\""),
    ],
)
def test_anything_outside_the_grammar_is_refused_naming_the_token(text, message):
    with pytest.raises(CostFormulaError) as error:
        CostFormula.parse(text)
    assert str(error.value) == message


def test_evaluation_runs_no_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CostFormulaError):
        CostFormula.parse("`PC Count`.to_csv('out.csv')").evaluate(DATA)
    assert list(tmp_path.iterdir()) == []
    assert np.isinf(CostFormula.parse("1 / (`PC Count` - 1)").evaluate(DATA)[0])
