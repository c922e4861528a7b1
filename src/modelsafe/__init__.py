"""modelsafe: save trained models and load them anywhere without trusting the file.

>>> import numpy as np, modelsafe
>>> data = modelsafe.dumps({"coef": np.arange(3.0)})
>>> modelsafe.loads(data)["coef"]
array([0., 1., 2.])
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._api import (
    dumps,
    generate_key,
    inspect,
    load,
    load_signing_key,
    loads,
    save,
    sign,
    untrusted_types,
    verify_signatures,
)
from ._container.layout import FORMAT_VERSION
from ._info import FileInfo
from .errors import (
    FormatError,
    FormatVersionError,
    IntegrityError,
    MmapUnavailableError,
    ModelSafeError,
    SignatureError,
    UnsupportedTypeError,
    UntrustedTypesError,
)

__all__ = [
    "FORMAT_VERSION",
    "FileInfo",
    "FormatError",
    "FormatVersionError",
    "IntegrityError",
    "MmapUnavailableError",
    "ModelSafeError",
    "SignatureError",
    "UnsupportedTypeError",
    "UntrustedTypesError",
    "__version__",
    "dumps",
    "generate_key",
    "inspect",
    "load",
    "load_signing_key",
    "loads",
    "save",
    "sign",
    "untrusted_types",
    "verify_signatures",
]
