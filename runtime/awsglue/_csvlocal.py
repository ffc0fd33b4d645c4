"""A small, plain CSV input's header and column types, found on the driver without Spark jobs.

Reading CSV through Spark costs two small jobs before the one that uses the data: Spark's own
(the header, or the number of columns, from the first line) and ``CsvTyping``'s sample. In a
fresh JVM each is a cold Spark job, which dominated a bookmarked run that reads one new file.
When the files to read are already listed (bookmarks, exclusions) and are small and plain, this
module reads them on the driver instead and gives the same answer Spark would: the column
names, and each column's type by the rule of ``_csvtypes`` over every value (fewer records
than the sample holds, so Spark's sample would be the whole input too).

"Plain" is what makes reading them here certain to agree with Spark's CSV parser: ASCII only,
no quote or escape character anywhere, a one-character separator, lines ended by ``\\n`` only,
no blank line but at the end, every line with the same number of fields, the same first line
in every file when it is a header, and no ``key=value`` folder (partition columns). Anything
else returns None and Spark does the work as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from awsglue._csvtypes import kind_of

__all__ = ["MAX_BYTES", "LocalCsv", "LocalSample", "read_plain_csv", "sample_plain_csv"]

# Beyond this the files are not small: Spark's sample reads only what it needs of them.
MAX_BYTES = 1 << 20
# classify's regular expressions (_choice) with Java's ASCII meaning of \d and \s.
_LONG = re.compile(r"^\s*[+-]?\d{1,18}\s*$", re.ASCII)
_DOUBLE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$", re.ASCII)
# What Java's String.trim removes, which Spark's test of a blank line uses.
_JAVA_TRIM = "".join(map(chr, range(33)))


class LocalCsv:
    """What Spark would find reading some CSV files: column names and Glue types."""

    def __init__(self, names: list[str], kinds: dict[str, str]) -> None:
        """Record the finding.

        Args:
            names: the columns, in order.
            kinds: column name -> long, double or string.
        """
        self.names = names
        self.kinds = kinds


class LocalSample:
    """The first records of a large CSV input, classified on the driver (``sample_plain_csv``)."""

    def __init__(self, found: list[set[str]], complete: bool) -> None:
        """Record the finding.

        Args:
            found: per column, in order, the classes of its non-null sampled values.
            complete: whether the sample is the whole input (then the types are exact).
        """
        self.found = found
        self.complete = complete


def _classify(value: str) -> str:
    # As _choice.classify on a non-null value.
    if _LONG.match(value):
        return "long"
    if _DOUBLE.match(value):
        return "double"
    return "string"


def read_plain_csv(
    paths: Sequence[str],
    sizes: Sequence[int],
    separator: str,
    quote: str,
    escape: str,
    header: bool,
    sample_rows: int,
) -> LocalCsv | None:
    """Names and types of small, plain CSV files, or None when Spark must find them.

    Args:
        paths: the local files, all of which are read.
        sizes: their sizes, as listed.
        separator: the field separator.
        quote: the quote character ("" for none).
        escape: the escape character.
        header: whether each file's first line is a header.
        sample_rows: the sample size of ``CsvTyping``: with as many records or more, the
            types would be guessed from Spark's first records, which only Spark knows.
    """
    if (
        not paths
        or sum(sizes) > MAX_BYTES
        or len(separator) != 1
        or separator in "\r\n\"'\\"
        or any("=" in part for path in paths for part in path.split("/")[:-1])
    ):
        return None
    specials = {c.encode() for c in (quote, escape) if c}
    names: list[str] | None = None
    found: list[set[str]] = []
    records = 0
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if not data:
            continue  # Spark reads nothing from an empty file either
        if len(data) > MAX_BYTES or not data.isascii() or b"\r" in data or b"\0" in data:
            return None
        if any(special in data for special in specials):
            return None
        lines = data.decode("ascii").split("\n")
        if lines[-1] == "":
            lines.pop()  # the last line's end
        if any(not line.strip(_JAVA_TRIM) for line in lines):
            return None  # Spark skips blank lines; not worth following here
        rows = [line.split(separator) for line in lines]
        width = len(rows[0])
        if any(len(row) != width for row in rows):
            return None
        if header:
            first, rows = rows[0], rows[1:]
            if names is None:
                names = first
            elif first != names:
                return None  # Spark would take the header of one file it picks
        elif names is None:
            names = [f"col{i}" for i in range(width)]
        if len(names) != width:
            return None
        if not found:
            found = [set() for _ in range(width)]
        for row in rows:
            for i, value in enumerate(row):
                if value:  # an empty field is null (Spark's nullValue "")
                    found[i].add(_classify(value))
        records += len(rows)
        if records >= sample_rows:
            return None
    if names is None:
        return None
    if any(not name or name != name.strip(_JAVA_TRIM) for name in names):
        return None  # Spark renames empty ones (_c<i>); spaces: keep to the plain case
    if len({name.lower() for name in names}) != len(names):
        return None  # Spark renames duplicates (<name><i>)
    if not found:
        found = [set() for _ in names]
    return LocalCsv(names, {name: kind_of(found[i]) for i, name in enumerate(names)})


def sample_plain_csv(
    path: str,
    separator: str,
    quote: str,
    escape: str,
    header: bool,
    names: Sequence[str],
    sample_rows: int,
    only_file: bool,
) -> LocalSample | None:
    """The first records of one file of a CSV input, classified, or None when they are not plain.

    ``CsvTyping``'s sample is a guess that the write checks against every value, so any records
    of the input will do, not only the ones Spark would take first; read here, they cost no
    Spark job (a cold one in a fresh JVM). The records must be parsed as Spark parses them:
    "plain" as in ``read_plain_csv``, and with ``header`` the file's first line must be Spark's
    column names (``names``), so that the fields line up.

    Args:
        path: a local file Spark reads for this input.
        separator: the field separator.
        quote: the quote character ("" for none).
        escape: the escape character.
        header: whether each file's first line is a header.
        names: the columns Spark found.
        sample_rows: how many records to classify at most.
        only_file: whether ``path`` is the input's only file (then reading it to its end
            makes the sample complete).
    """
    if len(separator) != 1 or separator in "\r\n\"'\\" or not names:
        return None
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    whole = len(data) <= MAX_BYTES
    if not data.isascii() or b"\r" in data or b"\0" in data:
        return None
    if any(c.encode() in data for c in (quote, escape) if c):
        return None
    lines = data.decode("ascii").split("\n")
    # The last piece is an unfinished line (cut by the read) or "" after the last line end.
    last = lines.pop()
    if whole and last:
        lines.append(last)
    if header:
        if not lines or lines[0].split(separator) != list(names):
            return None
        lines = lines[1:]
    records = lines[:sample_rows]
    if not records or any(not line.strip(_JAVA_TRIM) for line in records):
        return None  # nothing to guess from, or blank lines Spark would skip
    found: list[set[str]] = [set() for _ in names]
    for line in records:
        row = line.split(separator)
        if len(row) != len(names):
            return None
        for i, value in enumerate(row):
            if value:  # an empty field is null (Spark's nullValue "")
                found[i].add(_classify(value))
    return LocalSample(found, only_file and whole and len(lines) < sample_rows)
