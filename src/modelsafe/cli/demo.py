"""``modelsafe demo``: a short tour on generated data (numpy only, no downloads)."""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

# The load-time comparison; tests shrink it.
BENCH_BYTES = 100 * 2**20
_BENCH_ARRAYS = 10
# Every file the tour writes; with --dir, none may exist beforehand (the tour removes them).
FILES = (
    "model.msafe",
    "model-zstd.msafe",
    "hostile.msafe",
    "PWNED",
    "damaged.msafe",
    "big.msafe",
    "big.pkl",
)


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the demo files here (created if missing) instead of a temporary directory.",
)
@click.option("--keep", is_flag=True, help="Keep the files the demo wrote.")
def demo_command(directory: Path | None, keep: bool) -> None:
    """A short tour: save, inspect, load, refuse a hostile file, catch corruption.

    Everything runs on data generated here with numpy; nothing is downloaded.
    Takes a few seconds and writes about 200 MiB (removed at the end unless --keep).
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    start = time.perf_counter()
    if directory is None:
        work = Path(tempfile.mkdtemp(prefix="modelsafe-demo-"))
    else:
        present = [name for name in FILES if (directory / name).exists()]
        if present:
            raise click.BadParameter(
                f"{directory} already holds {', '.join(present)}, which the demo would "
                "overwrite and remove; choose another directory",
                param_hint="--dir",
            )
        directory.mkdir(parents=True, exist_ok=True)
        work = directory
    written: list[Path] = []
    try:
        _tour(console, work, written)
    finally:
        if keep:
            console.print(f"\nFiles kept in [bold]{escape(str(work))}[/].")
        elif directory is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for p in written:
                p.unlink(missing_ok=True)
    console.print(f"[bold green]Done[/] in {time.perf_counter() - start:.1f} s.")


def _tour(console: Console, work: Path, written: list[Path]) -> None:
    from rich.markup import escape

    import modelsafe

    from .inspect_cmd import human_bytes, render

    def path(name: str) -> Path:
        assert name in FILES, name
        p = work / name
        written.append(p)
        return p

    # 1. An object shaped like a small trained model.
    console.rule("[bold]1. A model-like object")
    model = make_model()
    console.print(
        "A dict holding a two-layer network's weights (float32, W1 pruned to 80% zeros), "
        "64 feature names, class labels, hyperparameters and a numpy RandomState."
    )

    # 2. Save it, raw and zstd-compressed.
    console.rule("[bold]2. Save")
    plain, packed = path("model.msafe"), path("model-zstd.msafe")
    meta = {"description": "modelsafe demo model", "trained_on": "random numbers"}
    modelsafe.save(model, plain, metadata=meta)
    modelsafe.save(model, packed, metadata=meta, compress="zstd")
    for p, how in ((plain, "raw buffers, memory-mappable"), (packed, "zstd, per buffer")):
        console.print(f"  {p.name:<18} {human_bytes(p.stat().st_size):>10}  ({how})")

    # 3. What the header says, without loading the data.
    console.rule("[bold]3. modelsafe inspect model.msafe (reads the header only)")
    render(console, modelsafe.inspect(plain), max_rows=16, show_buffers=False)

    # 4. Load it back three ways, and compare.
    console.rule("[bold]4. Load it back")
    loads: tuple[tuple[str, str, Callable[[], Any]], ...] = (
        ("load(model)", "copy-on-write memory map", lambda: modelsafe.load(plain)),
        (
            "load(model, mmap='r')",
            "read-only shared memory map",
            lambda: modelsafe.load(plain, mmap="r"),
        ),
        ("load(model_zstd)", "decompressed into memory", lambda: modelsafe.load(packed)),
    )
    for call, how, load in loads:
        if not same(model, load()):
            raise RuntimeError(f"{call}: the loaded object differs from the saved one")
        console.print(f"  {call:<27}{how:<29}[green]equal to the original[/]")
    try:
        modelsafe.load(packed, mmap="r")
    except modelsafe.MmapUnavailableError:
        console.print(
            f"  {'load(model_zstd, mmap=' + repr('r') + ')':<27}"
            "[yellow]MmapUnavailableError[/]: compressed, cannot be mapped"
        )
    else:
        raise RuntimeError("mmap='r' on a compressed file was not refused")

    # 5. A hostile file: a header that calls os.system.
    console.rule("[bold]5. A hostile file")
    hostile, marker = path("hostile.msafe"), path("PWNED")
    craft_hostile(plain, hostile, f'echo pwned > "{marker}"')
    console.print(
        "hostile.msafe is model.msafe with one more entry whose header node reads\n"
        '  {"$": "call", "module": "os", "name": "system", "args": ["echo pwned > ..."]}\n'
        "and 'os.system' added to the header's list of types (a pickle can do this in a few bytes)."
    )
    console.print(
        f"modelsafe.untrusted_types(hostile) -> {escape(repr(modelsafe.untrusted_types(hostile)))}"
    )
    try:
        modelsafe.load(hostile)
    except modelsafe.UntrustedTypesError as exc:
        console.print(
            "modelsafe.load(hostile) -> [bold red]UntrustedTypesError[/], "
            f"types {escape(repr(exc.types))}"
        )
    else:
        raise RuntimeError("the hostile file was loaded")
    if marker.exists():
        raise RuntimeError("the hostile command ran")
    console.print(
        "[green]Nothing ran[/]: the marker file the command would write does not exist. The types "
        "are checked from the header before anything is imported or built, and os.system cannot "
        "be trusted even with trusted=[...]."
    )

    # 6. One flipped byte in the data.
    console.rule("[bold]6. One flipped byte")
    damaged = path("damaged.msafe")
    where = flip_data_byte(plain, damaged, owner="['W1']")
    console.print(f"damaged.msafe is model.msafe with one byte of {where} flipped.")
    try:
        modelsafe.load(damaged)
    except modelsafe.IntegrityError as exc:
        console.print(f"modelsafe.load(damaged) -> [bold red]IntegrityError[/]: {escape(str(exc))}")
    else:
        raise RuntimeError("the damaged file was loaded")

    # 7. A rough size and speed comparison with pickle.
    console.rule(f"[bold]7. Size and load time vs pickle, {human_bytes(BENCH_BYTES)} of arrays")
    _compare_with_pickle(console, path("big.msafe"), path("big.pkl"))


def make_model(seed: int = 0) -> dict[str, Any]:
    """A dict shaped like a small trained model, from numpy alone."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((64, 512), dtype=np.float32)
    w1[np.abs(w1) < np.quantile(np.abs(w1), 0.8)] = 0  # magnitude pruning
    return {
        "weights": {
            "W1": w1,
            "b1": rng.standard_normal(512, dtype=np.float32) * 0.01,
            "W2": rng.standard_normal((512, 3), dtype=np.float32) * 0.05,
            "b2": np.zeros(3, dtype=np.float32),
        },
        "feature_names": [f"feature_{i:02d}" for i in range(64)],
        "classes": np.array(["cat", "dog", "bird"]),
        "hyperparameters": {
            "hidden": 512,
            "activation": "relu",
            "learning_rate": 1e-3,
            "epochs": 20,
        },
        "random_state": np.random.RandomState(seed),
    }


def same(a: Any, b: Any) -> bool:
    """Deep equality for the demo's objects: types, dtypes, shapes and values."""
    import numpy as np

    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, np.random.RandomState):
        return same(list(a.get_state(legacy=True)), list(b.get_state(legacy=True)))
    return bool(a == b)


def craft_hostile(src: Path, dst: Path, command: str) -> None:
    """Copy ``src`` (whose root is a dict) adding ``root["payload"] = os.system(command)``.

    The header's ``types`` list honestly includes ``os.system``, so the file is
    well formed and only the trust check stands in the way.
    """
    node = {"$": "call", "module": "os", "name": "system", "args": [command]}
    add_node(src, dst, "payload", node, "os.system")


def add_node(src: Path, dst: Path, key: str, node: dict[str, Any], type_name: str) -> None:
    """Copy ``src`` with ``root[key] = node`` written into its header, and ``type_name`` listed.

    ``src``'s root must be a dict.
    """

    def edit(header: dict[str, Any]) -> None:
        header["root"][key] = node
        header["types"] = sorted({*header["types"], type_name})

    rewrite_header(src, dst, edit)


def rewrite_header(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Copy ``src`` to ``dst`` with its JSON header changed in place by ``edit``.

    The preamble's header length and the padding follow; the data section is copied unchanged.
    """
    from .._container.layout import PREAMBLE, PREAMBLE_SIZE, align
    from .._container.writer import seal_header

    raw = src.read_bytes()
    magic, version, hlen = PREAMBLE.unpack_from(raw)
    header = json.loads(raw[PREAMBLE_SIZE : PREAMBLE_SIZE + hlen])
    edit(header)
    body = json.dumps(header, separators=(",", ":")).encode()
    body += b" " * (align(PREAMBLE_SIZE + len(body)) - PREAMBLE_SIZE - len(body))
    # The header hash catches accidents, not attackers: anyone can recompute it,
    # as a hostile file's author would. (Signatures are what stop them.)
    head = seal_header(PREAMBLE.pack(magic, version, len(body)) + body)
    dst.write_bytes(head + raw[PREAMBLE_SIZE + hlen :])


def flip_data_byte(src: Path, dst: Path, owner: str) -> str:
    """Copy ``src`` with one byte flipped in the first buffer whose owner contains ``owner``.

    Returns that owner.
    """
    import modelsafe

    from .._container.layout import PREAMBLE_SIZE

    info = modelsafe.inspect(src)
    buf = next(b for b in info.buffers if owner in str(b["owner"]))
    raw = bytearray(src.read_bytes())
    raw[PREAMBLE_SIZE + info.header_size + int(buf["offset"]) + int(buf["size"]) // 2] ^= 0xFF
    dst.write_bytes(raw)
    return str(buf["owner"])


def _best_of(n: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        del result
    return best


def _compare_with_pickle(console: Console, msafe: Path, pkl: Path) -> None:
    import numpy as np
    from rich.table import Table

    import modelsafe

    from .inspect_cmd import human_bytes

    rng = np.random.default_rng(1)
    n = BENCH_BYTES // 8 // _BENCH_ARRAYS
    arrays = {f"layer_{i}": rng.standard_normal(n) for i in range(_BENCH_ARRAYS)}
    # fsync=False: pickle.dump does not fsync either.
    modelsafe.save(arrays, msafe, fsync=False)
    with open(pkl, "wb") as fh:
        pickle.dump(arrays, fh, protocol=5)
    del arrays

    def load_pickle() -> Any:
        with open(pkl, "rb") as fh:
            return pickle.load(fh)

    table = Table(title_justify="left")
    table.add_column("how")
    table.add_column("file", justify="right")
    table.add_column("load, best of 3", justify="right")
    cases: list[tuple[str, Path, Callable[[], Any]]] = [
        ("pickle.load (protocol 5; runs code from the file)", pkl, load_pickle),
        ("modelsafe.load: memory map, digests checked", msafe, lambda: modelsafe.load(msafe)),
        (
            "modelsafe.load(mmap=False): read into memory, digests checked",
            msafe,
            lambda: modelsafe.load(msafe, mmap=False),
        ),
        (
            "modelsafe.load(mmap='r', verify=False): zero-copy, pages read when touched",
            msafe,
            lambda: modelsafe.load(msafe, mmap="r", verify=False),
        ),
    ]
    for label, p, fn in cases:
        ms = _best_of(3, fn) * 1000
        table.add_row(
            label, human_bytes(p.stat().st_size), f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"
        )
    console.print(table)
    console.print(
        "A rough one-off measurement (best of 3 runs, warm page cache, this machine); "
        "run [bold]make bench[/] for real numbers."
    )
