"""Predictors of outcome: linear and logistic regression on baseline characteristics.

Each model is fitted with the statsmodels formula API, as R fits it: ``smf.ols`` as R's
``lm`` and ``smf.glm(family=Binomial())`` as R's ``glm(family = binomial)`` (iteratively
reweighted least squares, here to a deviance change below 1e-12, the maximum likelihood
estimate to the last digits; the tests compare it with R iterated as far), each categorical
predictor in treatment coding against a reference level (``Treatment(reference=...)``, R's
``relevel``). The result is laid out as gtsummary's ``tbl_regression`` lays out a model: one row
per coefficient, the reference level of a categorical predictor a row of its own, and one row
per model with its size and fit.

Intervals: t-based for a linear model (R ``confint.lm``); for a logistic model the Wald
interval ``coefficient ± z(1 - α/2) SE``, exponentiated (R ``confint.default``), which is what
statsmodels gives. R's ``confint.glm`` (MASS's profile-likelihood interval) differs from it in
small samples and is not what is reported here. P values are R's ``summary``: t for a linear
model, Wald z for a logistic one.

The AUC (the C statistic) of a logistic model is the Mann-Whitney probability that a responder's
fitted probability exceeds a non-responder's (ties counting one half), from
``scipy.stats.mannwhitneyu``: ``U / (n_responders n_others)``, as R's ``wilcox.test(p1,
p0)$statistic / (n1 n0)`` or pROC's ``auc`` give it.

Every model uses complete cases only (patients with the response, every adjustment and every
predictor of that model); the number left out is reported with it. Level names and column names
never enter a formula: they are replaced by safe tokens, so a level written ``a'b`` or a column
named like a function cannot change the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "COEFFICIENT_COLUMNS",
    "MODEL_COLUMNS",
    "RegressionResult",
    "fit_regression",
    "predictors_of_outcome",
    "RESPONSES",
]

_NAN = float("nan")
INTERCEPT = "(Intercept)"
#: What a model explains, by the plan's ``model`` and ``responders`` settings.
RESPONSES = ("change", "post", "responder")

#: Columns of :attr:`RegressionResult.coefficients` (see :func:`fit_regression`).
COEFFICIENT_COLUMNS = [
    "response",
    "family",
    "model",
    "predictor",
    "role",
    "level",
    "reference_level",
    "is_reference",
    "term",
    "n_level",
    "estimate",
    "ci_low",
    "ci_high",
    "coefficient",
    "std_error",
    "statistic",
    "p",
    "n",
]
#: Columns of :attr:`RegressionResult.models` (see :func:`fit_regression`).
MODEL_COLUMNS = [
    "response",
    "family",
    "model",
    "predictor",
    "formula",
    "n",
    "n_dropped",
    "n_events",
    "df_model",
    "df_residual",
    "r_squared",
    "adj_r_squared",
    "sigma",
    "f_statistic",
    "f_p",
    "auc",
    "null_deviance",
    "residual_deviance",
    "aic",
    "conf_level",
    "note",
]


@dataclass(frozen=True)
class RegressionResult:
    """The coefficients of one or more models and the models themselves (two tidy frames)."""

    coefficients: pd.DataFrame
    models: pd.DataFrame

    @staticmethod
    def concat(results: Sequence[RegressionResult]) -> RegressionResult:
        """The results one after another (empty frames with the columns when none)."""
        coefficients = [r.coefficients for r in results if len(r.coefficients)]
        models = [r.models for r in results if len(r.models)]
        return RegressionResult(
            pd.concat(coefficients, ignore_index=True)
            if coefficients
            else pd.DataFrame(columns=COEFFICIENT_COLUMNS),
            pd.concat(models, ignore_index=True) if models else pd.DataFrame(columns=MODEL_COLUMNS),
        )


def fit_regression(
    data: pd.DataFrame,
    response: str,
    predictors: Sequence[str],
    *,
    family: str = "linear",
    categorical: Mapping[str, Sequence[str]] | None = None,
    reference: Mapping[str, str] | None = None,
    adjust: Sequence[str] = (),
    conf_level: float = 0.95,
    model: str = "multivariable",
    keep: str = "all",
) -> RegressionResult:
    """One linear (R ``lm``) or logistic (R ``glm(family = binomial)``) model of ``response``
    on ``adjust`` and ``predictors``, complete cases only.

    Parameters
    ----------
    data : DataFrame
        One row per patient; the response, adjustment and predictor columns.
    response : str
        The column explained: a number (linear) or 0 / 1 (logistic; 1 the event).
    predictors : sequence of str
        The predictors, in the order their rows come. A column in ``categorical`` enters as
        indicators of its levels against its reference level (treatment coding); any other
        column as a number.
    family : {"linear", "logistic"}
    categorical : mapping of str to sequence of str, optional
        Categorical predictor -> its levels in the order their rows come (values as text).
        A level no patient of the model has is left out.
    reference : mapping of str to str, optional
        Categorical predictor -> its reference level; default the first of its levels in
        ``categorical`` that a patient of the model has (the declared order's first: the rule of
        the between-group comparisons and the ANCOVA, and R's default for a factor whose levels
        are in that order).
    adjust : sequence of str
        Numeric columns every model includes before the predictors (the before value).
    conf_level : float
    model : str
        The ``model`` column's value (``"multivariable"`` or ``"univariable"``).
    keep : {"all", "predictors"}
        Which coefficient rows are returned: every one, or the predictors' only (a univariable
        model's row beside the multivariable one).

    Returns
    -------
    RegressionResult
        ``coefficients``: one row per coefficient, in model order (intercept, adjustments, then
        each predictor; a categorical predictor's reference level first, as a row without an
        estimate), with columns

        - ``response``: ``response``; ``family``: ``"linear"`` or ``"logistic"``; ``model``.
        - ``predictor``: the column (``"(Intercept)"`` for the intercept).
        - ``role``: ``"intercept"``, ``"adjustment"`` or ``"predictor"``.
        - ``level``: the level of a categorical predictor ('' for a number).
        - ``reference_level``: the categorical predictor's reference level ('' for a number).
        - ``is_reference``: the row of the reference level itself (no estimate).
        - ``term``: the coefficient's name, ``predictor`` or ``predictor[level]``.
        - ``n_level``: patients of the model at that level (NaN for a number).
        - ``estimate``: the coefficient (linear) or odds ratio ``exp(coefficient)``
          (logistic); ``ci_low``, ``ci_high``: its ``conf_level`` interval (t-based, R
          ``confint.lm``; Wald, exponentiated, R ``confint.default``).
        - ``coefficient``: the coefficient itself (log odds ratio for logistic);
          ``std_error``: its standard error; ``statistic``: t (linear) or Wald z (logistic);
          ``p``: its two-sided P (R ``summary``).
        - ``n``: patients the model used.

        ``models``: one row, with columns ``response``, ``family``, ``model``, ``predictor``
        (the predictor of a univariable model, '' for a multivariable one), ``formula`` (R's
        formula in the columns' names, reference levels named), ``n`` (patients used),
        ``n_dropped`` (rows of ``data`` left out for a missing value), ``n_events`` (logistic:
        patients with response 1), ``df_model`` (coefficients besides the intercept),
        ``df_residual``; linear: ``r_squared``, ``adj_r_squared``, ``sigma`` (residual SE), and
        ``f_statistic`` with ``f_p`` (the overall F test of R ``summary.lm``); logistic:
        ``auc`` (C statistic: Mann-Whitney, see the module docstring), ``null_deviance``,
        ``residual_deviance``, ``aic``; ``conf_level``; ``note`` (why a model could not be
        fitted, or what is doubtful about it: perfect separation, collinear predictors; ''
        when none). A statistic a family does not have is NaN.

    Notes
    -----
    Assumptions: independent patients; linear: a linear effect of each numeric predictor,
    normal residuals of constant variance; logistic: linearity on the log-odds scale and enough
    events per coefficient (about 10 is the usual advice). A model with no residual degrees of
    freedom, a response without variation, a categorical predictor with a single level among
    the complete cases, or a reference level no patient has is not fitted: its coefficients
    are NaN and the note says why.
    """
    # The submodules used, not statsmodels.api: that imports every model (about 0.8 s).
    import statsmodels.formula.api as smf
    from statsmodels.genmod.families import Binomial

    if family not in ("linear", "logistic"):
        raise ValueError(f"family must be 'linear' or 'logistic', got {family!r}")
    categorical = dict(categorical or {})
    reference = dict(reference or {})
    columns = [response, *adjust, *predictors]
    complete = data[columns].notna().all(axis=1)
    used = data.loc[complete, columns]
    n, dropped = len(used), int((~complete).sum())

    # Safe names: the response y, adjustments a0.., predictors x0..; levels L0...
    frame = pd.DataFrame({"y": used[response].astype(float).to_numpy()})
    terms, levels_of, refs, notes = [], {}, {}, []
    for j, column in enumerate(adjust):
        frame[f"a{j}"] = used[column].astype(float).to_numpy()
        terms.append(f"a{j}")
    for j, column in enumerate(predictors):
        if column in categorical:
            values = used[column].astype(str).str.strip()
            declared = [str(lv) for lv in categorical[column]]
            seen = set(values)
            levels = [lv for lv in declared if lv in seen] + sorted(seen - set(declared))
            ref = reference.get(column) or (levels[0] if levels else "")
            levels_of[column], refs[column] = levels, ref
            if len(levels) < 2:
                notes.append(f"{column} has fewer than 2 levels among the patients of the model")
            elif ref not in levels:
                notes.append(f"no patient of the model has {column}'s reference level")
            token = {lv: f"L{i}" for i, lv in enumerate(levels)}
            frame[f"x{j}"] = values.map(token).to_numpy()
            terms.append(f"C(x{j}, Treatment(reference='{token.get(ref, 'L0')}'))")
        else:
            frame[f"x{j}"] = used[column].astype(float).to_numpy()
            terms.append(f"x{j}")
    formula_text = _formula_text(response, adjust, predictors, refs)
    base = {"response": response, "family": family, "model": model}
    model_row = {
        **base,
        "predictor": predictors[0] if model == "univariable" and len(predictors) == 1 else "",
        "formula": formula_text,
        "n": n,
        "n_dropped": dropped,
        "n_events": int(frame["y"].sum()) if family == "logistic" else _NAN,
        **dict.fromkeys(MODEL_COLUMNS[8:-2], _NAN),
        "conf_level": conf_level,
        "note": "",
    }
    y = frame["y"].to_numpy()
    if family == "logistic" and n and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{response}: a logistic model's response must be 0 or 1")
    if not notes and n and np.all(y == y[0]):
        notes.append(
            "every patient of the model has the same response"
            if family == "logistic"
            else "the response does not vary"
        )

    coefficients = (
        1 + len(adjust) + sum(len(levels_of[c]) - 1 if c in categorical else 1 for c in predictors)
    )
    if not notes and n <= coefficients:
        notes.append("no more patients than coefficients: the model cannot be estimated")
    fit, separated = None, []
    if not notes:
        formula = "y ~ " + (" + ".join(terms) if terms else "1")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if family == "linear":
                fitted = smf.ols(formula, frame)
            else:
                fitted = smf.glm(formula, frame, family=Binomial())
            exog = fitted.exog
            if np.linalg.matrix_rank(exog) < exog.shape[1]:
                notes.append(
                    "predictors are collinear (R gives an aliased coefficient NA): "
                    "the model is not estimated"
                )
            else:
                # IRLS to a deviance change below 1e-12 (statsmodels stops at 1e-8 by default,
                # where the last digits of a Wald P still move: 2e-6 relative on birthwt).
                fit = fitted.fit(**({} if family == "linear" else {"tol": 1e-12, "maxiter": 100}))
        if fit is not None and family == "logistic":
            separated = _separated_levels(frame, predictors, categorical, levels_of)
            if separated:
                notes.append(
                    "separation: at "
                    + ", ".join(f"{p}'s level {lv}" for p, lv in separated)
                    + " every patient has the same response, so the odds ratio has no finite "
                    "estimate (R reports the last iterate's, with an enormous SE); not estimated"
                )
            elif any("separation" in str(w.message).lower() for w in caught) or np.any(
                (fit.fittedvalues < 1e-10) | (fit.fittedvalues > 1 - 1e-10)
            ):
                separated = [("", "")]
                notes.append(
                    "separation: some fitted probabilities are 0 or 1, so some odds ratios "
                    "have no finite estimate; not estimated"
                )
    model_row["note"] = "; ".join(notes)

    conf = fit.conf_int(alpha=1 - conf_level) if fit is not None else None
    logistic = family == "logistic"

    # A separated model's estimates are the last iterate of a divergent fit: none is shown.
    # A level set apart compares with the reference without a finite estimate; a reference set
    # apart, every level of its predictor.
    unusable = ("", "") in separated
    blocked = set(separated) | {(p, "") for p, lv in separated if lv == refs.get(p)}

    def coefficient(name: str | None, predictor: str = "", level: str = "") -> dict:
        if (
            fit is None
            or name is None
            or name not in fit.params.index
            or unusable
            or (predictor, level) in blocked
            or (predictor, "") in blocked
        ):
            return dict.fromkeys(
                ["estimate", "ci_low", "ci_high", "coefficient", "std_error", "statistic", "p"],
                _NAN,
            )
        b, low, high = float(fit.params[name]), float(conf.loc[name, 0]), float(conf.loc[name, 1])
        shown = np.exp if logistic else (lambda v: v)
        # exp of a limit beyond 709 is inf, as R's exp gives it.
        with np.errstate(over="ignore"):
            return {
                "estimate": float(shown(b)),
                "ci_low": float(shown(low)),
                "ci_high": float(shown(high)),
                "coefficient": b,
                "std_error": float(fit.bse[name]),
                "statistic": float(fit.tvalues[name]),
                "p": float(fit.pvalues[name]),
            }

    def row(predictor, role, term, name, level="", ref="", is_ref=False, n_level=_NAN) -> dict:
        return {
            **base,
            "predictor": predictor,
            "role": role,
            "level": level,
            "reference_level": ref,
            "is_reference": is_ref,
            "term": term,
            "n_level": n_level,
            **coefficient(None if is_ref else name, predictor, level),
            "n": n,
        }

    rows = [row(INTERCEPT, "intercept", INTERCEPT, "Intercept")]
    rows += [row(c, "adjustment", c, f"a{j}") for j, c in enumerate(adjust)]
    for j, column in enumerate(predictors):
        if column not in categorical:
            rows.append(row(column, "predictor", column, f"x{j}"))
            continue
        levels, ref = levels_of[column], refs[column]
        token = {lv: f"L{i}" for i, lv in enumerate(levels)}
        counts = frame[f"x{j}"].value_counts()
        prefix = f"C(x{j}, Treatment(reference='{token.get(ref, 'L0')}'))"
        ordered = ([ref] if ref in levels else []) + [lv for lv in levels if lv != ref]
        for lv in ordered:
            rows.append(
                row(
                    column,
                    "predictor",
                    f"{column}[{lv}]",
                    f"{prefix}[T.{token[lv]}]",
                    level=lv,
                    ref=ref,
                    is_ref=lv == ref,
                    n_level=float(counts.get(token[lv], 0)),
                )
            )
    if keep == "predictors":
        rows = [r for r in rows if r["role"] == "predictor"]

    if fit is not None:
        model_row["df_model"] = float(fit.df_model)
        model_row["df_residual"] = float(fit.df_resid)
        if logistic:
            p1 = np.asarray(fit.fittedvalues, float)
            events, others = p1[y == 1], p1[y == 0]
            u = stats.mannwhitneyu(events, others, method="asymptotic").statistic
            model_row.update(
                auc=float(u) / (events.size * others.size),
                null_deviance=float(fit.null_deviance),
                residual_deviance=float(fit.deviance),
                aic=float(fit.aic),
            )
        else:
            model_row.update(
                r_squared=float(fit.rsquared),
                adj_r_squared=float(fit.rsquared_adj),
                sigma=float(np.sqrt(fit.scale)),
                f_statistic=float(fit.fvalue) if fit.df_model > 0 else _NAN,
                f_p=float(fit.f_pvalue) if fit.df_model > 0 else _NAN,
            )
    return RegressionResult(
        pd.DataFrame(rows, columns=COEFFICIENT_COLUMNS),
        pd.DataFrame([model_row], columns=MODEL_COLUMNS),
    )


def _separated_levels(
    frame: pd.DataFrame,
    predictors: Sequence[str],
    categorical: Mapping[str, Sequence[str]],
    levels_of: Mapping[str, Sequence[str]],
) -> list[tuple[str, str]]:
    """(predictor, level) of every categorical level whose patients all have the same response:
    quasi-complete separation, which leaves the level's odds ratio (or, at the reference level,
    every odds ratio of the predictor) without a finite maximum likelihood estimate."""
    out = []
    for j, column in enumerate(predictors):
        if column not in categorical:
            continue
        for i, level in enumerate(levels_of[column]):
            y = frame.loc[frame[f"x{j}"] == f"L{i}", "y"]
            if len(y) and y.nunique() == 1:
                out.append((column, level))
    return out


def _formula_text(
    response: str, adjust: Sequence[str], predictors: Sequence[str], refs: Mapping[str, str]
) -> str:
    """R's formula of the model in the columns' own names, each categorical predictor with its
    reference level: ``change ~ age + etiology (reference bells_palsy)``."""
    terms = [*adjust] + [f"{p} (reference {refs[p]})" if p in refs else p for p in predictors]
    return f"{response} ~ " + (" + ".join(terms) if terms else "1")


def predictors_of_outcome(
    pairs: pd.DataFrame,
    predictors: Sequence[str],
    *,
    model: str = "change",
    categorical: Mapping[str, Sequence[str]] | None = None,
    reference: Mapping[str, str] | None = None,
    univariable: bool = False,
    responder_threshold: float | None = None,
    higher_is_better: bool = True,
    conf_level: float = 0.95,
) -> RegressionResult:
    """Regression of one outcome's change on baseline predictors, and, with a minimal important
    change, logistic regression of responder status.

    Parameters
    ----------
    pairs : DataFrame
        One row per patient: ``pre_value``, ``post_value`` and the predictor columns.
    predictors : sequence of str
    model : {"change", "post_adjusted"}
        ``"change"``: a linear model of ``post - pre`` on the predictors; ``"post_adjusted"``:
        of the after value on the before value and the predictors (ANCOVA). The logistic model
        of responders is adjusted for the before value under ``"post_adjusted"`` as well.
    categorical, reference
        As :func:`fit_regression`.
    univariable : bool
        Also fit each predictor alone (with the before value under ``"post_adjusted"``); its
        rows come beside the multivariable ones, ``model = "univariable"``.
    responder_threshold : float, optional
        The minimal important change (positive, in the better direction): a patient whose
        improvement (``post - pre`` if higher is better, else ``pre - post``) reaches it is a
        responder (1), as :func:`pipeline.statistics.responders.responder_rates` counts them.
        None: no logistic model.
    higher_is_better : bool
    conf_level : float

    Returns
    -------
    RegressionResult
        The frames of :func:`fit_regression`, their ``response`` column ``"change"``,
        ``"post"`` or ``"responder"``: the linear model first, then the logistic one;
        within each, the multivariable model, then the univariable ones in predictor order.
    """
    if model not in ("change", "post_adjusted"):
        raise ValueError(f"model must be 'change' or 'post_adjusted', got {model!r}")
    frame = pairs.copy()
    frame["change"] = frame["post_value"] - frame["pre_value"]
    frame["post"] = frame["post_value"]
    adjust = ("pre_value",) if model == "post_adjusted" else ()
    fits = [("change" if model == "change" else "post", "linear")]
    if responder_threshold is not None:
        gain = frame["change"] if higher_is_better else -frame["change"]
        frame["responder"] = (gain >= responder_threshold).astype(float).where(gain.notna())
        fits.append(("responder", "logistic"))
    options = dict(
        categorical=categorical, reference=reference, adjust=adjust, conf_level=conf_level
    )
    results = []
    for response, family in fits:
        multivariable = fit_regression(frame, response, predictors, family=family, **options)
        results.append(multivariable)
        # Each univariable model compares the levels with the multivariable model's reference.
        rows = multivariable.coefficients
        chosen = dict(zip(rows["predictor"], rows["reference_level"]))
        options["reference"] = {
            p: (dict(reference or {}).get(p) or chosen.get(p, "")) for p in dict(categorical or {})
        }
        if univariable:
            results += [
                fit_regression(
                    frame,
                    response,
                    [p],
                    family=family,
                    model="univariable",
                    keep="predictors",
                    **options,
                )
                for p in predictors
            ]
    return RegressionResult.concat(results)
