"""Reading a table file as people save it: CSV or TSV in UTF-8 (with or without a byte-order mark), UTF-16 with one,
or Korean Excel's cp949; a comma, tab, semicolon or bar delimiter, sniffed from the first lines; decimal commas in a
file whose delimiter is not a comma; or Parquet. pandas parses the text (pyarrow the Parquet columns): what a file
holds is read as values, never run. A CSV's columns are kept as the text they hold (numbers are read from it where a
column is used as numbers: `as_numbers`), so a category such as "007" stays what the file says.
"""
import codecs
import csv
import difflib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.errors import UserError, first_line
from trainer.logs import log

# tried in this order when data.encoding is null and the file has no byte-order mark: UTF-8, then the encoding
# Korean Excel saves "CSV (comma delimited)" in
TEXT_ENCODINGS = ("utf-8", "cp949")
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
DELIMITERS = (",", "\t", ";", "|")  # a tie goes to the earlier one
SNIFF_LINES = 50
PARQUET = (".parquet", ".pq")
TAB_SEPARATED = (".tsv", ".tab")
SPREADSHEETS = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")


@dataclass
class Table:
    """A table as read: `frame`'s columns hold text (str, NaN where a cell is empty) from a CSV, or typed values
    from Parquet; `decimal_comma`: numbers in the file may be written 1,5 (its delimiter is not a comma)."""
    frame: pd.DataFrame
    path: str
    decimal_comma: bool = False

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def numbers(self, name: str, rows: np.ndarray | None = None) -> tuple[pd.Series, int]:
        """Column `name` (at `rows`, all by default) as floats, NaN where a cell is empty or is not a number, and
        the count of the cells that are not numbers (0: the column is numbers)."""
        column = self.frame[name] if rows is None else self.frame[name].iloc[rows]
        return as_numbers(column, self.decimal_comma)

    def texts(self, name: str, rows: np.ndarray | None = None) -> pd.Series:
        """Column `name` (at `rows`) as text: str, or NaN where a cell is empty."""
        column = self.frame[name] if rows is None else self.frame[name].iloc[rows]
        return column.map(str, na_action="ignore").astype(object)


def as_numbers(column: pd.Series, decimal_comma: bool = False) -> tuple[pd.Series, int]:
    """Floats of a column of text or numbers, and how many of its present cells are not numbers. With
    `decimal_comma`, a column whose every present cell reads as a number once its comma is the decimal point
    ("1,5") is read so."""
    if pd.api.types.is_bool_dtype(column):
        return pd.Series(np.nan, index=column.index), int(column.notna().sum())  # true/false are categories
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(float), 0
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return pd.Series(np.nan, index=column.index), int(column.notna().sum())  # dates and times: not numbers
    present = column.notna()
    numbers = pd.to_numeric(column, errors="coerce").astype(float)
    bad = int((present & numbers.isna()).sum())
    if bad and decimal_comma:
        commas = pd.to_numeric(column.str.replace(",", ".", regex=False), errors="coerce").astype(float)
        if int((present & commas.isna()).sum()) < bad:
            numbers, bad = commas, int((present & commas.isna()).sum())
    return numbers, bad


def read_table(path: str, *, encoding: str | None = None, delimiter: str | None = None) -> Table:
    """The table in `path` (data.path): Parquet by its extension, otherwise delimited text (data.encoding and
    data.delimiter, or null to detect them). Column names and text cells are stripped of surrounding spaces, and
    an empty cell is missing.

    Raises:
        UserError: no such file, a spreadsheet file, text that cannot be decoded (naming data.encoding), rows that
            do not parse, or an empty file; each in one sentence.
    """
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise UserError(f"data.path={path} is not a file: point data.path at a CSV, TSV or Parquet file")
    suffix = file.suffix.lower()
    if suffix in SPREADSHEETS:
        raise UserError(f"data.path={path} is a spreadsheet: save it as CSV (UTF-8) or Parquet and point data.path "
                        "at that file")
    if suffix in PARQUET:
        return Table(stripped(parquet_frame(file, path)), str(path))
    text = decoded(file.read_bytes(), path, encoding)
    if delimiter is None:
        delimiter = "\t" if suffix in TAB_SEPARATED else sniffed_delimiter(text)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, skipinitialspace=True,
                            engine="python" if len(delimiter) > 1 else "c")
    except pd.errors.EmptyDataError:
        raise UserError(f"data.path={path} is empty: it needs a header line and rows") from None
    except (pd.errors.ParserError, ValueError) as error:
        raise UserError(f"data.path={path} cannot be read as a table delimited by {delimiter!r} "
                        f"({first_line(error)}): fix that row, or set data.delimiter") from None
    return Table(stripped(frame), str(path), decimal_comma=delimiter != ",")


def parquet_frame(file: Path, path: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(file)
    except ImportError:
        raise UserError(f"data.path={path} is Parquet, which needs pyarrow: pip install pyarrow") from None
    except Exception as error:  # pyarrow's errors have no common base that pandas re-exports
        raise UserError(f"data.path={path} cannot be read as Parquet ({first_line(error)}): check the file") from None


def decoded(raw: bytes, path: str, encoding: str | None) -> str:
    """The file's text: in data.encoding, or (null) as its byte-order mark says, else UTF-8, else cp949 (logged).
    A UTF-8 byte-order mark is dropped whatever the encoding is called."""
    marked = next((name for bom, name in BOMS if raw.startswith(bom)), None)
    tried = [encoding] if encoding else [marked] if marked else list(TEXT_ENCODINGS)
    failure = None
    for name in tried:
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            raise UserError(f"data.encoding={name} is not an encoding Python knows: use e.g. utf-8, cp949 or "
                            "latin-1") from None
        try:
            text = raw.decode("utf-8-sig" if codec == "utf-8" else name)
        except UnicodeDecodeError as error:
            failure = failure or error
            continue
        if name != tried[0]:
            log.info(f"data.path={path} is not UTF-8 text: read as {name} (Korean Excel's encoding); set "
                     "data.encoding if that is wrong")
        return text
    raise UserError(f"data.path={path} cannot be decoded as {' or '.join(tried)} (byte "
                    f"{raw[failure.start]:#04x} at position {failure.start}): set data.encoding to the file's "
                    "encoding, e.g. data.encoding=latin-1")


def sniffed_delimiter(text: str) -> str:
    """The delimiter that cuts the first SNIFF_LINES lines into the same number of fields, more than one, the most
    of them in the header; else the one that cuts the header into the most; a tie goes to the earlier of DELIMITERS.
    Consistency decides a file of decimal commas delimited by semicolons: commas cut its header into one field and
    its rows into several."""
    lines = [line for line in text.split("\n", SNIFF_LINES)[:SNIFF_LINES] if line.strip()]

    def score(delimiter: str) -> tuple[bool, int, int]:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)] or [0]
        return (len(set(counts)) == 1 and counts[0] > 1, counts[0], -DELIMITERS.index(delimiter))

    return max(DELIMITERS, key=score)


def stripped(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as text without surrounding spaces; text cells likewise, an empty one missing."""
    frame = frame.rename(columns=lambda name: str(name).strip())
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            column = column.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
            frame[name] = column.where(column != "", np.nan)
    return frame


def column_named(table: Table, name: object, key: str | None = None) -> str:
    """`name`, a column of the table; else one sentence listing the columns and the closest name. `key`: the config
    key that named it (data.target, ...); None for a column the model was trained on, which the file must have."""
    columns = table.columns
    if name in columns:
        return name
    close = [c for c in columns if c.lower() == str(name).lower()] or difflib.get_close_matches(
        str(name), columns, n=1, cutoff=0.6)
    shown = ", ".join(columns[:30]) + (f", ... ({len(columns)} in all)" if len(columns) > 30 else "")
    if len(columns) == 1 and any(d in columns[0] for d in DELIMITERS):
        raise UserError(f"data.path={table.path} reads as one column, {columns[0]!r}: set data.delimiter to the "
                        "character between its columns, or null to detect it")
    if key is None:
        what, hint = f"the model's input column {name}", (f"rename {close[0]} to {name} in the file if it is that "
                                                           f"column" if close else "add it to the file")
    else:
        what, hint = f"{key}={name}", f"did you mean {key}={close[0]}?" if close else f"set {key} to one of them"
    raise UserError(f"{what} is not a column of data.path={table.path} (its columns: {shown}): {hint}")
