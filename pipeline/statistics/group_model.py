"""The ANCOVA as a model: the coefficient table of ``post ~ pre + group + covariates``.

Beside the F test of the group and each level's adjusted difference from the reference
(:mod:`pipeline.statistics.between_groups`), a statistician reads the model itself: the slope on
the before value, each level's adjusted difference from the reference level with its CI, each
covariate's coefficient, R², the residual SE and the patients used. The model is fitted by
:func:`pipeline.statistics.regression.fit_regression` (statsmodels ``ols`` with the group in
treatment coding, ``C(group, Treatment(reference=...))``: R's ``lm(post ~ pre +
relevel(group, ref) + covariates)``), so its rows are laid out as the predictors' models are.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pipeline.statistics.regression import COEFFICIENT_COLUMNS, MODEL_COLUMNS, fit_regression

__all__ = ["ancova_model", "GROUP", "PRE"]

#: The names the model gives the before value and the group (R: ``post ~ pre + group ...``).
PRE, GROUP, POST = "pre", "group", "post"


def ancova_model(
    frame: pd.DataFrame,
    covariates: Sequence[str] = (),
    *,
    levels: Sequence[str] | None = None,
    reference: str | None = None,
    conf_level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ANCOVA of the after value on the before value, the group and the covariates.

    Parameters
    ----------
    frame : DataFrame
        One row per patient: ``pre_value``, ``post_value``, ``group_level`` and each covariate
        (numbers, or text entered as treatment dummies against its first level in text order,
        as R's ``factor``). Complete cases only.
    covariates : sequence of str
        The covariate columns, entered after the group.
    levels : sequence of str, optional
        The group's levels in the order wanted (the spec's declared order); levels not listed
        follow in text order. Default: text order.
    reference : str, optional
        The level every other is compared with; default (or a level no complete case has):
        the first of ``levels`` with a complete case.
    conf_level : float

    Returns
    -------
    tuple of (DataFrame, DataFrame)
        ``coefficients``: :data:`pipeline.statistics.regression.COEFFICIENT_COLUMNS`, one row
        per term in model order: ``(Intercept)``; ``pre`` (the slope on the before value,
        ``role`` "adjustment"); the group's reference level (``is_reference``, no estimate)
        then each other level (``predictor`` "group", ``level``, ``reference_level``,
        ``n_level``; ``estimate`` the adjusted difference, level minus reference, in the after
        value, equally in change; ``ci_low``, ``ci_high`` t-based, R ``confint``;
        ``std_error``, ``statistic`` t, ``p`` R ``summary``); then each covariate (a text
        covariate as its levels). ``models``: one row, :data:`MODEL_COLUMNS`: ``formula``,
        ``n`` (patients used), ``n_dropped``, ``df_model``, ``df_residual``, ``r_squared``,
        ``adj_r_squared``, ``sigma`` (residual SE), ``f_statistic`` and ``f_p`` (the overall F
        of R ``summary.lm``), ``conf_level``, ``note`` (why the model was not fitted).

    Notes
    -----
    Assumes a common slope on the before value in every group, a linear effect of each numeric
    covariate, independent patients and normal residuals of constant variance [1]. Checked
    against R ``lm``, ``confint``, ``summary`` in ``tests/fixtures/r/groups.R``.

    References
    ----------
    .. [1] Vickers, A. J. & Altman, D. G. (2001). Analysing controlled trials with baseline and
       follow up measurements. BMJ 323, 1123-1124.
    """
    covariates = list(covariates)
    columns = ["pre_value", "post_value", "group_level", *covariates]
    used = frame[columns].dropna()
    data = pd.DataFrame(
        {
            PRE: used["pre_value"].astype(float),
            POST: used["post_value"].astype(float),
            GROUP: used["group_level"].astype(str),
        }
    )
    categorical: dict[str, list[str]] = {}
    references: dict[str, str] = {}
    for c in covariates:
        numbers = pd.to_numeric(used[c], errors="coerce")
        if numbers.notna().all():
            data[c] = numbers.astype(float)
        else:
            data[c] = used[c].astype(str)
            categorical[c] = sorted(set(data[c]))
            references[c] = categorical[c][0]
    wanted = [str(lv) for lv in levels] if levels is not None else []
    seen = set(data[GROUP])
    order = [lv for lv in wanted if lv in seen] + sorted(seen - set(wanted))
    categorical[GROUP] = order
    ref = str(reference) if reference is not None and str(reference) in seen else None
    references[GROUP] = ref if ref is not None else (order[0] if order else "")
    result = fit_regression(
        data,
        POST,
        [GROUP, *covariates],
        categorical=categorical,
        reference=references,
        adjust=[PRE],
        conf_level=conf_level,
        model="ancova",
    )
    coefficients, models = result.coefficients, result.models
    # Rows of data dropped for a missing value belong to the model too.
    models["n_dropped"] = models["n_dropped"] + (len(frame) - len(used))
    return coefficients[COEFFICIENT_COLUMNS], models[MODEL_COLUMNS]
