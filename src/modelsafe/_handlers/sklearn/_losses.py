"""Loss functions of ``sklearn._loss._loss`` and ``sklearn.linear_model._sgd_fast``.

These Cython classes hold at most one double (Tweedie ``power``, Huber ``delta``,
pinball ``quantile``, hinge ``threshold``, epsilon-insensitive ``epsilon``) and
no array or index, so no value can make them touch memory they do not own. They
are rebuilt by calling the class with its parameters (``__reduce__``), or, for
``CyHalfMultinomialLoss``, through Cython's ``__pyx_unpickle_*`` helper. The
validators only pin down that shape: the arguments the constructor takes, and
no state, so that the names trusted for them cannot be used for anything else.
"""

from __future__ import annotations

import math
from typing import Any

from .. import Validator
from . import _checks

# class name -> name of its one parameter (None: no parameter)
CY_LOSSES: dict[str, str | None] = {
    "CyAbsoluteError": None,
    "CyExponentialLoss": None,
    "CyHalfBinomialLoss": None,
    "CyHalfGammaLoss": None,
    "CyHalfPoissonLoss": None,
    "CyHalfSquaredError": None,
    "CyHalfTweedieLoss": "power",
    "CyHalfTweedieLossIdentity": "power",
    "CyHuberLoss": "delta",
    "CyPinballLoss": "quantile",
}
SGD_LOSSES: dict[str, str | None] = {
    "Hinge": "threshold",
    "SquaredHinge": "threshold",
    "ModifiedHuber": None,
    "EpsilonInsensitive": "epsilon",
    "SquaredEpsilonInsensitive": "epsilon",
}
LOSS_MODULE = "sklearn._loss._loss"
SGD_MODULE = "sklearn.linear_model._sgd_fast"
MULTINOMIAL = "CyHalfMultinomialLoss"
UNPICKLE_MULTINOMIAL = f"__pyx_unpickle_{MULTINOMIAL}"


def _args_for(cls: str, param: str | None) -> Any:
    def check(args: list[Any], kwargs: dict[str, Any]) -> None:
        want = 0 if param is None else 1
        if kwargs or len(args) != want:
            takes = "no arguments" if param is None else f"one argument ({param})"
            raise ValueError(f"{cls} takes {takes}, got {len(args)} and {sorted(kwargs)}")
        if param is not None and not math.isfinite(_checks.real(param, args[0])):
            raise ValueError(f"{param} = {args[0]} is not finite")

    return check


def _no_state(obj: Any, state: Any) -> None:
    if state is not None:
        raise ValueError(f"{type(obj).__name__} is rebuilt from its arguments and takes no state")


def _unpickle_multinomial(args: list[Any], kwargs: dict[str, Any]) -> None:
    """``__pyx_unpickle_CyHalfMultinomialLoss(cls, checksum, state)``: Cython checks the
    checksum and calls ``cls.__new__(cls)``; the class has no attributes to restore."""
    from sklearn._loss import _loss

    if kwargs or len(args) != 3:
        raise ValueError("takes (class, checksum, state)")
    if args[0] is not _loss.CyHalfMultinomialLoss:
        raise TypeError(f"only rebuilds {MULTINOMIAL}, not {args[0]!r}")
    _checks.integer("checksum", args[1])
    if args[2] is not None and args[2] != ():
        raise ValueError(f"{MULTINOMIAL} has no attributes, the state must be ()")


def validators() -> dict[str, Validator]:
    out = {
        f"{module}.{cls}": Validator(args=_args_for(cls, param), state=_no_state)
        for module, table in ((LOSS_MODULE, CY_LOSSES), (SGD_MODULE, SGD_LOSSES))
        for cls, param in table.items()
    }
    out[f"{LOSS_MODULE}.{UNPICKLE_MULTINOMIAL}"] = Validator(
        args=_unpickle_multinomial, state=_no_state
    )
    return out
