"""Download public datasets, each file verified against the project's ``SHA256SUMS.txt``.

Only PhysioNet's "EEG During Mental Arithmetic Tasks" (eegmat) is described here
(:data:`EEGMAT`); a second dataset published with a ``SHA256SUMS.txt`` needs only another
:class:`RemoteDataset`. Downloads go through pooch, which streams each file to a temporary
file and moves it into place only once its SHA-256 matches.

The contract of :func:`fetch_dataset`:

* ``SHA256SUMS.txt`` is fetched first (and kept in the folder, so that a rerun on a complete
  folder needs no network); every other file must be listed in it, or the fetch stops.
* Files already in the folder whose hash matches are kept; one whose hash differs is removed
  and downloaded again (and reported). A download whose hash differs is refused: nothing is
  left under its name.
* Downloads in progress live in ``DIR/.partial/`` only; a killed run leaves its temporary file
  there, never under a final name, and the next run clears that folder first. Two fetches into
  the same folder at the same time are not supported.
* Network and server failures raise :class:`~maan.errors.MaanError` naming the URL and the
  reason (one line).
"""
from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from maan.errors import InvalidInputError, MaanError

CHECKSUMS = "SHA256SUMS.txt"
PARTIAL = ".partial"
#: seconds to wait for the server, to connect and between two pieces of a file
TIMEOUT = 30.0
_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64})[ \t]+\*?(\S.*?)\s*$")


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset published as files beside a ``SHA256SUMS.txt``.

    Parameters
    ----------
    name : str
        Short name, as in ``maan fetch NAME``.
    title : str
        Human-readable title.
    base_url : str
        Default URL of the folder holding ``SHA256SUMS.txt`` and the files (ends with ``/``).
    licence : str
        Licence name and URL.
    citations : tuple of str
        References to cite where the data is used.
    subjects : range
        Valid subject numbers.
    subject_files : tuple of str
        ``str.format`` patterns of one subject's files, given the subject number.
    extra_files : tuple of str
        Files fetched whatever the subjects.
    next_command : str
        The command to run next, ``{out}`` standing for the folder.
    """

    name: str
    title: str
    base_url: str
    licence: str
    citations: tuple[str, ...]
    subjects: range
    subject_files: tuple[str, ...]
    extra_files: tuple[str, ...] = ()
    next_command: str = ""

    def files_of(self, subject: int) -> list[str]:
        """File names of one subject."""
        return [pattern.format(subject) for pattern in self.subject_files]

    def notice(self, base_url: str | None = None) -> str:
        """The licence and citation text (printed by ``maan fetch`` and written to ``DIR/README``)."""
        mirror = f" (fetched from {base_url})" if base_url and base_url != self.base_url else ""
        lines = [f"{self.title}", f"Source: {self.base_url}{mirror}",
                 f"Licence: {self.licence}", "Cite where you use this data:"]
        lines += [f"  - {c}" for c in self.citations]
        return "\n".join(lines) + "\n"


EEGMAT = RemoteDataset(
    name="eegmat",
    title='PhysioNet "EEG During Mental Arithmetic Tasks" (eegmat 1.0.0)',
    base_url="https://physionet.org/files/eegmat/1.0.0/",
    licence="Open Data Commons Attribution License v1.0 (ODC-By 1.0, https://opendatacommons.org/licenses/by/1-0/)",
    citations=(
        "Zyma I, Tukaev S, Seleznov I, Kiyono K, Popov A, Chernykh M, Shpenkov O. Electroencephalograms "
        "during Mental Arithmetic Task Performance. Data 4(1):14, 2019.",
        "Goldberger A, Amaral L, Glass L, Hausdorff J, Ivanov PC, Mark R, Mietus JE, Moody GB, Peng CK, "
        "Stanley HE. PhysioBank, PhysioToolkit, and PhysioNet: Components of a new research resource for "
        "complex physiologic signals. Circulation 101(23):e215-e220, 2000.",
    ),
    subjects=range(36),
    subject_files=("Subject{:02d}_1.edf", "Subject{:02d}_2.edf"),
    extra_files=("subject-info.csv",),
    next_command="maan preprocess --dataset eegmat --data {out} --out features/eegmat",
)


@dataclass
class FetchResult:
    """What :func:`fetch_dataset` did.

    Attributes
    ----------
    folder : Path
        The dataset folder.
    subjects : list of int
        The subjects the folder now holds (of those asked for).
    fetched : list of str
        Files downloaded by this call.
    present : list of str
        Files already there and verified (not downloaded again).
    replaced : list of str
        Files that were there with another hash, removed and downloaded again (also in ``fetched``).
    """

    folder: Path
    subjects: list[int] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


# -- parameters -----------------------------------------------------------------------------
def format_subjects(numbers: Iterable[int]) -> str:
    """Subject numbers as compact ranges: ``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    numbers = sorted(set(numbers))
    parts: list[str] = []
    start = prev = None
    for n in numbers + [None]:
        if start is not None and (n is None or n != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if n is not None and start is None:
            start = n
        prev = n
    return ",".join(parts)


def parse_subjects(value, valid: range, option: str = "--subjects") -> list[int] | None:
    """Subject numbers from ``"0-9"``, ``"0,3,5"``, ``"0-3,7"``, an int or an iterable of ints.

    ``None`` stays ``None`` (every subject the checksums list). Anything else out of ``valid``
    or malformed raises MaanError naming ``option``, the allowed values and the value given.
    """
    if value is None:
        return None
    allowed = f"{valid.start}-{valid.stop - 1}"

    def bad() -> MaanError:
        return MaanError(f"{option}: expected subject numbers in {allowed}, as N, N-M or a comma-separated "
                         f"list of those (e.g. 0-9, 0,3,5 or 0-3,7); got {value!r}")

    numbers: list[int] = []
    if isinstance(value, str):
        for part in value.replace(" ", "").split(","):
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match:
                raise bad()
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) is not None else first
            if last < first:
                raise bad()
            numbers.extend(range(first, last + 1))
    else:
        items = [value] if isinstance(value, int) else value
        try:
            items = list(items)
        except TypeError:
            raise bad() from None
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int):
                raise bad()
            numbers.append(int(item))
    if not numbers or any(n not in valid for n in numbers):
        raise bad()
    return sorted(set(numbers))


def _check_base_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not re.match(r"^https?://[^/\s]+", base_url):
        raise MaanError(f"--base-url: expected an http:// or https:// URL of the dataset's folder; got {base_url!r}")
    return base_url if base_url.endswith("/") else base_url + "/"


# -- checksums ------------------------------------------------------------------------------
def read_checksums(path: Path, source: str) -> dict[str, str]:
    """``{file name: sha256 hex}`` from a PhysioNet ``SHA256SUMS.txt`` (``<hex> <name>`` lines).

    ``source`` (its URL or path) names it in the InvalidInputError raised for a malformed file.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(source, "not a SHA256SUMS.txt (not text)") from None
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _SUM_LINE.match(line)
        if not match:
            raise InvalidInputError(source, f"line {number} is not '<sha256 hex> <file name>': {line[:80]!r}")
        sums[match.group(2)] = match.group(1).lower()
    if not sums:
        raise InvalidInputError(source, "lists no files")
    return sums


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- downloading ----------------------------------------------------------------------------
@contextmanager
def _quiet_pooch():
    """pooch logs every download on stderr; maan reports on stdout and shows a progress bar."""
    import logging

    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _network_reason(exc) -> str:
    """A short reason for a requests exception (its text can be a long nested repr)."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason or ''}".strip()
    text = str(exc)
    if isinstance(exc, requests.Timeout) or "timed out" in text:
        return f"no answer from the server for {TIMEOUT:g} s (timed out)"
    # a connection that breaks while the body is read: ChunkedEncodingError or ConnectionError
    if (isinstance(exc, requests.exceptions.ChunkedEncodingError) or "Connection broken" in text
            or "IncompleteRead" in text):
        return "connection lost during the download"
    if isinstance(exc, requests.ConnectionError):
        errno = re.search(r"\[Errno -?\d+\] ([^'\"\]\)]+)", text)
        return f"cannot connect ({errno.group(1).strip()})" if errno else "cannot connect"
    return (text.splitlines() or [type(exc).__name__])[0]


class _PoochBar:
    """pooch's progress-bar protocol (``total``, ``update``, ``reset``, ``close``) as a tqdm bar.

    The bar appears once pooch knows the file's size (so that it never shows an empty line) and
    is cleared when done. Always true: pooch tests its bar with ``bool()``.
    """

    def __init__(self, desc: str):
        self.desc = desc
        self.bar = None

    def __bool__(self):
        return True

    @property
    def total(self):
        return None if self.bar is None else self.bar.total

    @total.setter
    def total(self, value):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=value or None, desc=self.desc, unit="B", unit_scale=True, unit_divisor=1024,
                        leave=False)  # value 0: the server sent no length

    def update(self, n):
        self.bar.update(n)

    def reset(self):
        self.bar.reset(total=self.bar.total)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _download(url: str, folder: Path, name: str, sha256: str | None, progress: str | None) -> Path:
    """``url`` to ``folder/name`` with pooch, verified against ``sha256`` when given.

    ``progress``: the progress bar's label, or None for no bar. Raises MaanError naming the URL
    for a network or HTTP failure, and naming the file when the download's hash differs (pooch
    has removed it then).
    """
    import pooch
    import requests

    bar = _PoochBar(progress) if progress else None
    http = pooch.HTTPDownloader(progressbar=bar if bar is not None else False, chunk_size=1 << 16,
                                timeout=TIMEOUT)
    done = []

    def downloader(url_, output_file, pooch_):
        http(url_, output_file, pooch_)
        done.append(True)

    try:
        with _quiet_pooch():
            return Path(pooch.retrieve(url, known_hash=f"sha256:{sha256}" if sha256 else None, fname=name,
                                       path=folder, downloader=downloader))
    except requests.exceptions.RequestException as exc:
        raise MaanError(f"{url}: {_network_reason(exc)}") from None
    except ValueError as exc:
        if done:  # the whole file came and pooch refused it (and deleted it)
            raise MaanError(f"{name} ({url}): SHA-256 differs from the one in {CHECKSUMS}; the download "
                            f"was refused and removed (rerun to try again)") from None
        raise
    finally:
        if bar is not None:
            bar.close()


def _publish(downloaded: Path, path: Path) -> None:
    """Move a verified download to its name, as readable as a file written by open() would be
    (pooch's temporary file is private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(downloaded, 0o666 & ~umask)
    os.replace(downloaded, path)


def _clear_partial(out: Path) -> Path:
    partial = out / PARTIAL
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


def _select(dataset: RemoteDataset, sums: dict[str, str], subjects, sums_url: str) -> tuple[list[int], list[str]]:
    """The subjects and files to fetch; every one must be listed in the checksums."""
    listed = [s for s in dataset.subjects if any(f in sums for f in dataset.files_of(s))]
    chosen = listed if subjects is None else subjects
    if not chosen:
        raise InvalidInputError(sums_url, f"lists no {dataset.name} subject files")
    names = list(dataset.extra_files) + [f for s in chosen for f in dataset.files_of(s)]
    missing = [f for f in names if f not in sums]
    if missing:
        which = (f"subject(s) {format_subjects(listed)}" if listed else "no subject")
        raise MaanError(f"{sums_url} does not list {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} "
                        f"(it lists {which}); ask for listed subjects with --subjects, or check --base-url")
    return chosen, names


def fetch_dataset(dataset: RemoteDataset, out, subjects=None, base_url: str | None = None,
                  progress: bool = True, announce: Callable[[str], None] | None = None) -> FetchResult:
    """Download ``dataset`` into ``out``, verifying every file against its ``SHA256SUMS.txt``.

    Parameters
    ----------
    dataset : RemoteDataset
        What to fetch (e.g. :data:`EEGMAT`).
    out : str or PathLike
        Destination folder, created if needed. A rerun keeps the files already there and
        verified, and downloads the rest.
    subjects : str, int, iterable of int or None
        Subjects to fetch (``"0-9"``, ``"0,3,5"``, ``"0-3,7"``, ``[0, 3]``...). None: every
        subject listed in ``SHA256SUMS.txt``. A subject not listed there is an error.
    base_url : str or None
        URL of the folder holding ``SHA256SUMS.txt`` and the files (a mirror); None: the
        dataset's own.
    progress : bool
        Show a progress bar on stderr.
    announce : callable or None
        Called once with the licence and citation text (:meth:`RemoteDataset.notice`) when the
        parameters are checked, before any download (``maan fetch`` prints it).

    Returns
    -------
    FetchResult
        The folder and what was fetched or found already there.

    Raises
    ------
    MaanError
        A bad parameter, a network or HTTP failure (naming the URL), a file not listed in
        ``SHA256SUMS.txt``, or a download whose hash differs (naming the file; nothing is left
        under its name).
    """
    chosen = parse_subjects(subjects, dataset.subjects)
    base_url = _check_base_url(dataset.base_url if base_url is None else base_url)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(out, "--out must be a folder; this is a file")
    if announce is not None:
        announce(dataset.notice(base_url))
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    result = FetchResult(folder=out)
    partial = _clear_partial(out)
    label = f"fetch {dataset.name}"

    sums_url = base_url + CHECKSUMS
    sums_path = out / CHECKSUMS
    try:
        if sums_path.exists():  # kept from an earlier run: a complete folder needs no network
            try:
                sums = read_checksums(sums_path, str(sums_path))
            except InvalidInputError as exc:
                raise InvalidInputError(exc.path, f"{exc.reason}; delete it to fetch it again") from None
        else:  # parsed before it is moved in: a bad page never sits in the folder as the checksums
            downloaded = _download(sums_url, partial, CHECKSUMS, None, f"{label} {CHECKSUMS}" if progress else None)
            sums = read_checksums(downloaded, sums_url)
            _publish(downloaded, sums_path)
            result.fetched.append(CHECKSUMS)
        result.subjects, names = _select(dataset, sums, chosen, sums_url)

        from maan.preprocessing.io import atomic_write_bytes

        readme = dataset.notice(base_url) + (f"\nEvery file here was verified against {CHECKSUMS} (SHA-256) "
                                             f"by `maan fetch {dataset.name}`.\n")
        atomic_write_bytes(out / "README", readme.encode())

        todo = []
        for name in names:
            path = out / name
            if path.is_file() and _sha256(path) == sums[name]:
                result.present.append(name)
                continue
            if path.exists():  # another version, or damaged: never left under the name
                path.unlink()
                result.replaced.append(name)
            todo.append(name)

        for number, name in enumerate(todo, 1):
            bar = f"{label} {number}/{len(todo)} {name}" if progress else None
            downloaded = _download(base_url + name, partial, name, sums[name], bar)
            _publish(downloaded, out / name)
            result.fetched.append(name)
    finally:  # a killed run leaves it; the next run clears it first
        shutil.rmtree(partial, ignore_errors=True)
        if created and not any(out.iterdir()):  # failed before any file: leave no empty folder behind
            out.rmdir()
    return result


def fetch_eegmat(out, subjects=None, base_url: str = EEGMAT.base_url, progress: bool = True) -> Path:
    """Download PhysioNet's "EEG During Mental Arithmetic Tasks" (eegmat 1.0.0) into ``out``.

    36 subjects (0-35), each ``SubjectNN_1.edf`` (rest) and ``SubjectNN_2.edf`` (mental
    arithmetic), and ``subject-info.csv``; every file verified against the project's
    ``SHA256SUMS.txt`` (kept in ``out``). Licence: Open Data Commons Attribution License
    v1.0; the references to cite are written to ``out/README``. Reruns resume: files already
    there and verified are not downloaded again.

    Parameters
    ----------
    out : str or PathLike
        Destination folder (created if needed).
    subjects : str, int, iterable of int or None
        Subjects to fetch: ``"0-9"``, ``"0,3,5"``, ``"0-3,7"``, ``[0, 3]``... in 0-35. None:
        every subject listed in ``SHA256SUMS.txt`` (all 36 on PhysioNet). A subject a mirror's
        ``SHA256SUMS.txt`` does not list is an error.
    base_url : str
        URL of the folder holding ``SHA256SUMS.txt`` and the files (default: PhysioNet).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Path
        ``out``, ready for ``maan preprocess --dataset eegmat --data OUT``.

    Raises
    ------
    MaanError
        A bad parameter, a network or HTTP failure (naming the URL), a file not listed in
        ``SHA256SUMS.txt``, or a download whose SHA-256 differs (naming the file; it is removed).
    """
    return fetch_dataset(EEGMAT, out, subjects=subjects, base_url=base_url, progress=progress).folder


#: dataset name -> its description, for ``maan fetch NAME``
DATASETS = {EEGMAT.name: EEGMAT}
