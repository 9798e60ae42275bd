"""Export of events: CSV safe for spreadsheets, and JSON lines. Streamed in Arrow batches.

CSV: RFC 4180 (fields with commas, quotes or line breaks are quoted, quotes doubled, CRLF line
ends), UTF-8 (optionally with a BOM for Excel). Text cells starting with ``=``, ``+``, ``-``,
``@``, tab, CR or LF are prefixed with ``'`` so a spreadsheet shows them as text instead of
running them as formulas (OWASP "CSV injection"; attackers choose usernames like
``=cmd|' /C calc'!A0``). Numeric columns stay numbers. Times are ISO 8601 UTC.

JSON lines: one object per event, values unchanged (JSON is not evaluated by spreadsheets).

Both take a :class:`~secdash.store.Store` with :class:`~secdash.store.Filters` (the whole
filtered result, streamed; never all rows in memory), or an in-memory frame/table.
"""
from __future__ import annotations

import getpass
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
_DANGEROUS_RE = r"^[=+\-@\t\r\n]"
FORMATS = ("csv", "jsonl")


def sanitize_cell(value: Any) -> Any:
    """A value as it may go into a spreadsheet cell: text that could start a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(DANGEROUS_PREFIXES):
        return "'" + value
    return value


def _batches(source: Any, filters=None, batch_rows: int = 100_000) -> Iterator:
    """Arrow record batches from a Store (+ filters), a pandas/polars frame, an Arrow table or batches."""
    import pyarrow as pa

    from secdash.store import Filters, Store, iter_arrow

    if isinstance(source, Store):
        f = replace(filters or Filters(), limit=None, offset=0)
        if filters is None:
            f = replace(f, descending=False)
        with source.read() as con:
            yield from iter_arrow(con, f, batch_rows=batch_rows)
        return
    if isinstance(source, pa.RecordBatch):
        yield source
        return
    if isinstance(source, pa.Table):
        yield from source.to_batches(max_chunksize=batch_rows)
        return
    mod = type(source).__module__
    if mod.startswith("polars"):
        yield from source.to_arrow().to_batches(max_chunksize=batch_rows)
        return
    if mod.startswith("pandas"):
        yield from pa.Table.from_pandas(source, preserve_index=False).to_batches(max_chunksize=batch_rows)
        return
    if isinstance(source, Iterable):
        yield from source
        return
    raise TypeError(f"cannot export from {type(source).__name__}")


def _safe_frame(batch, *, sanitize: bool = True):
    """A polars frame of one batch with times as ISO text and dangerous text cells neutralised."""
    import polars as pl

    df = pl.from_arrow(batch)
    if isinstance(df, pl.Series):  # pragma: no cover - a single column
        df = df.to_frame()
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            exprs.append(col.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ").alias(name))
        elif dtype == pl.String and sanitize:
            exprs.append(pl.when(col.str.contains(_DANGEROUS_RE)).then(pl.lit("'") + col).otherwise(col).alias(name))
    return df.with_columns(exprs) if exprs else df


class _Sink:
    """A binary writer over a path, a binary file, or a text file (its buffer or re-encoded)."""

    def __init__(self, out: Any) -> None:
        self.text = None
        self.close_after = False
        if isinstance(out, (str, os.PathLike)):
            self.f = open(out, "wb")  # noqa: SIM115
            self.close_after = True
        elif isinstance(out, io.TextIOBase) and hasattr(out, "buffer"):
            out.flush()
            self.f = out.buffer
        elif isinstance(out, io.TextIOBase):
            self.f = io.BytesIO()
            self.text = out
        else:
            self.f = out

    def write(self, data: bytes) -> None:
        if self.text is not None:
            self.text.write(data.decode("utf-8"))
        else:
            self.f.write(data)

    def close(self) -> None:
        if self.close_after:
            self.f.close()
        elif self.text is None and hasattr(self.f, "flush"):
            self.f.flush()


def write_csv(source: Any, out: Any, *, filters=None, bom: bool = False, sanitize: bool = True,
              batch_rows: int = 100_000) -> int:
    """Write the events of ``source`` (Store + ``filters``, or a frame/table) as CSV. Returns rows."""
    sink = _Sink(out)
    rows = 0
    header = True
    try:
        if bom:
            sink.write("\ufeff".encode())
        for batch in _batches(source, filters, batch_rows):
            df = _safe_frame(batch, sanitize=sanitize)
            if df.height == 0 and not header:
                continue
            buf = io.BytesIO()
            df.write_csv(buf, include_header=header, line_terminator="\r\n", quote_style="necessary",
                         null_value="")
            sink.write(buf.getvalue())
            header = False
            rows += df.height
        if header:  # nothing at all: still a header line
            from secdash.store import EVENT_COLUMNS

            sink.write((",".join(["id", *EVENT_COLUMNS]) + "\r\n").encode())
    finally:
        sink.close()
    return rows


def write_jsonl(source: Any, out: Any, *, filters=None, batch_rows: int = 100_000) -> int:
    """Write the events of ``source`` as JSON lines (times ISO 8601 UTC). Returns rows."""
    sink = _Sink(out)
    rows = 0
    try:
        for batch in _batches(source, filters, batch_rows):
            df = _safe_frame(batch, sanitize=False)
            if df.height == 0:
                continue
            buf = io.BytesIO()
            df.write_ndjson(buf)
            sink.write(buf.getvalue())
            rows += df.height
    finally:
        sink.close()
    return rows


def csv_bytes(source: Any, *, filters=None, bom: bool = True) -> bytes:
    """The CSV as bytes (for a download button); prefer :func:`write_csv` to a file for big results."""
    buf = io.BytesIO()
    write_csv(source, buf, filters=filters, bom=bom)
    return buf.getvalue()


def _audit(home, fmt: str, rows: int, filters, user: str | None, ip: str | None, target: str | None) -> None:
    if home is None:
        return
    try:
        from secdash import audit
    except ImportError:  # pragma: no cover - the audit module is optional
        return
    summary = filters.summary() if filters is not None else {}
    audit.record(home, "export", user=user, ip=ip, format=fmt, rows=rows, target=target,
                 **{k: v for k, v in summary.items() if k not in ("user", "ip", "format", "rows", "target")})


def export(store, filters, out: Any, *, fmt: str = "csv", home=None, user: str | None = None,
           ip: str | None = None, bom: bool = False) -> int:
    """Export the filtered events of ``store`` to ``out`` and record it in the audit log of ``home``.

    ``out`` is a path (written to a temporary file next to it, then renamed, mode 0600), or a file
    object. ``user`` defaults to the OS user. Returns rows written.
    """
    if fmt not in FORMATS:
        from secdash.errors import SecdashError

        raise SecdashError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if user is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
    writer = write_csv if fmt == "csv" else write_jsonl
    kwargs = {"bom": bom} if fmt == "csv" else {}
    target = None
    if isinstance(out, (str, os.PathLike)):
        path = Path(out)
        target = str(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "wb") as f:
                rows = writer(store, f, filters=filters, **kwargs)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    else:
        rows = writer(store, out, filters=filters, **kwargs)
    _audit(home, fmt, rows, filters, user, ip, target)
    return rows


__all__ = ["sanitize_cell", "write_csv", "write_jsonl", "csv_bytes", "export", "FORMATS", "IO"]
