"""
What the real-data scripts (data/wikipedia, data/instructions, data/benchmarks) share: resumable
HTTPS downloads with progress bars (asked again, after a pause, while a server answers 429 or 5xx), Hugging Face
dataset file listings, optional parquet reading, writing the data folder's manifest.json, and a table of the
languages we know about. Files are written through atomic_open, and errors reported through fail, both from
pipeline/documents.py, which the stages use too.

Only the standard library, tqdm, pipeline/documents.py and (optionally, for parquet) pyarrow. Every failure a user can
cause or meet - no network, a missing file, a truncated download - ends in a SystemExit("error: ...") that names the URL
or file at fault.

Hugging Face: the hub's address is $HF_ENDPOINT (a mirror, default https://huggingface.co), read at
each call as huggingface_hub does; $HF_TOKEN, when set, goes with every request to that address as
"Authorization: Bearer <token>" (gated sets, higher rate limits) and never to another host: the hub
redirects downloads to a CDN, and the header is not forwarded there.
"""

import hashlib
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from tqdm import tqdm

from pipeline.documents import atomic_open, fail

HF = "https://huggingface.co"  # the default of $HF_ENDPOINT
USER_AGENT = "afa-reference-data-prepare/1.0 (python urllib)"
CHUNK = 1 << 20
TIMEOUT = 60
RETRY_DELAYS = (2, 8, 30)  # seconds before each new try after HTTP 429 or 5xx (then give up)
MAX_RETRY_DELAY = 120

# code: (English name, script, written with spaces between words, FLORES-200 / Belebele code,
#        dominant word order, morphology). None where we do not claim to know (coarse typology, WALS-style).
LANGUAGES = {
    # the paper's 12 pretraining languages
    "ar": ("Arabic", "Arabic", True, "arb_Arab", "VSO", None),
    "zh": ("Chinese", "Han", False, "zho_Hans", "SVO", "isolating"),
    "cs": ("Czech", "Latin", True, "ces_Latn", "SVO", None),
    "en": ("English", "Latin", True, "eng_Latn", "SVO", None),
    "et": ("Estonian", "Latin", True, "est_Latn", "SVO", "suffixing"),
    "fi": ("Finnish", "Latin", True, "fin_Latn", "SVO", "suffixing"),
    "he": ("Hebrew", "Hebrew", True, "heb_Hebr", "SVO", None),
    "hi": ("Hindi", "Devanagari", True, "hin_Deva", "SOV", None),
    "it": ("Italian", "Latin", True, "ita_Latn", "SVO", None),
    "ru": ("Russian", "Cyrillic", True, "rus_Cyrl", "SVO", None),
    "es": ("Spanish", "Latin", True, "spa_Latn", "SVO", None),
    "sw": ("Swahili", "Latin", True, "swh_Latn", "SVO", None),
    # the paper's 14 adapting languages
    "ja": ("Japanese", "Japanese", False, "jpn_Jpan", "SOV", "suffixing"),
    "fr": ("French", "Latin", True, "fra_Latn", "SVO", None),
    "pt": ("Portuguese", "Latin", True, "por_Latn", "SVO", None),
    "nl": ("Dutch", "Latin", True, "nld_Latn", None, None),
    "se": ("Northern Sami", "Latin", True, None, "SVO", "suffixing"),
    "tr": ("Turkish", "Latin", True, "tur_Latn", "SOV", "suffixing"),
    "da": ("Danish", "Latin", True, "dan_Latn", "SVO", None),
    "no": ("Norwegian", "Latin", True, "nob_Latn", "SVO", None),
    "ko": ("Korean", "Hangul", True, "kor_Hang", "SOV", "suffixing"),
    "pl": ("Polish", "Latin", True, "pol_Latn", "SVO", None),
    "hu": ("Hungarian", "Latin", True, "hun_Latn", None, "suffixing"),
    "th": ("Thai", "Thai", False, "tha_Thai", "SVO", "isolating"),
    "mr": ("Marathi", "Devanagari", True, "mar_Deva", "SOV", None),
    "gu": ("Gujarati", "Gujarati", True, "guj_Gujr", "SOV", None),
    # others the benchmarks cover (candidates for the "other" group)
    "de": ("German", "Latin", True, "deu_Latn", None, None),
    "vi": ("Vietnamese", "Latin", True, "vie_Latn", "SVO", "isolating"),
    "id": ("Indonesian", "Latin", True, "ind_Latn", "SVO", None),
    "el": ("Greek", "Greek", True, "ell_Grek", None, None),
    "bg": ("Bulgarian", "Cyrillic", True, "bul_Cyrl", "SVO", None),
    "uk": ("Ukrainian", "Cyrillic", True, "ukr_Cyrl", "SVO", None),
    "ro": ("Romanian", "Latin", True, "ron_Latn", "SVO", None),
    "fa": ("Persian", "Arabic", True, "pes_Arab", "SOV", None),
    "ur": ("Urdu", "Arabic", True, "urd_Arab", "SOV", None),
    "bn": ("Bengali", "Bengali", True, "ben_Beng", "SOV", None),
    "ta": ("Tamil", "Tamil", True, "tam_Taml", "SOV", "suffixing"),
    "te": ("Telugu", "Telugu", True, "tel_Telu", "SOV", "suffixing"),
    "my": ("Burmese", "Myanmar", False, "mya_Mymr", "SOV", None),
    "eu": ("Basque", "Latin", True, "eus_Latn", "SOV", "suffixing"),
    "ht": ("Haitian Creole", "Latin", True, "hat_Latn", "SVO", "isolating"),
    "qu": ("Quechua", "Latin", True, "quy_Latn", "SOV", "suffixing"),
    "ca": ("Catalan", "Latin", True, "cat_Latn", "SVO", None),
    "sv": ("Swedish", "Latin", True, "swe_Latn", "SVO", None),
    "sk": ("Slovak", "Latin", True, "slk_Latn", "SVO", None),
    "lt": ("Lithuanian", "Latin", True, "lit_Latn", "SVO", None),
    "ka": ("Georgian", "Georgian", True, "kat_Geor", "SOV", None),
    "am": ("Amharic", "Ethiopic", True, "amh_Ethi", "SOV", None),
    "yo": ("Yoruba", "Latin", True, "yor_Latn", "SVO", "isolating"),
}
PAPER_GROUPS = {
    "pretraining": ["ar", "zh", "cs", "en", "et", "fi", "he", "hi", "it", "ru", "es", "sw"],
    "adapting": ["ja", "fr", "pt", "nl", "se", "tr", "da", "no", "ko", "pl", "hu", "th", "mr", "gu"],
}
# Wikipedia language codes: "en", "ceb", "zh-yue", "roa-tara", "be-x-old" ...
CODE_PATTERN = re.compile(r"^[a-z]{2,3}(-[a-z0-9]+)*$")


def language_entry(code, group):
    """A manifest "languages" entry (without the file paths) for a language code."""
    name, script, spaces, _, word_order, morphology = LANGUAGES.get(code, (code, None, None, None, None, None))
    return {"code": code, "name": name, "group": group, "script": script, "word_order": word_order,
            "morphology": morphology, "spaces": spaces}


def parse_codes(text, option):
    """'ar,zh, cs' -> ['ar', 'zh', 'cs']; a malformed code stops with a message naming the option."""
    codes = [c.strip() for c in (text or "").split(",") if c.strip()]
    for code in codes:
        if not CODE_PATTERN.match(code):
            fail(f"{option}: '{code}' is not a language code (expected e.g. 'en', 'zh', 'ceb')")
    if len(set(codes)) != len(codes):
        fail(f"{option}: a language is listed twice in '{text}'")
    return codes


# ---- HTTP -------------------------------------------------------------------------------------------

class NotFound(Exception):
    """HTTP 404: the caller knows what that means (an unknown language, a file a set does not have)."""


def hf_endpoint():
    return (os.environ.get("HF_ENDPOINT") or HF).rstrip("/")


def open_url(url, headers=None):
    """urlopen with a user agent and a timeout; network failures stop with a message naming the URL.
    A busy server (HTTP 429 or 5xx) is asked again after a growing pause (RETRY_DELAYS, or the server's
    Retry-After when it gives seconds, at most MAX_RETRY_DELAY): rate limits and restarts pass, a
    missing file or a refused token (4xx) fails at once."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    token = os.environ.get("HF_TOKEN")
    if token and url.startswith(hf_endpoint() + "/"):
        request.add_unredirected_header("Authorization", f"Bearer {token}")  # not sent on to a redirect's host
    for attempt in range(len(RETRY_DELAYS) + 1):
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise NotFound(url) from None
            if e.code == 416:  # range not satisfiable: the caller asked past the end
                raise
            if (e.code == 429 or e.code >= 500) and attempt < len(RETRY_DELAYS):
                delay = retry_delay(e.headers.get("Retry-After") if e.headers else None, RETRY_DELAYS[attempt])
                print(f"{url}: HTTP {e.code} {e.reason}; trying again in {delay:g} s", file=sys.stderr)
                time.sleep(delay)
                continue
            tries = f" (after {attempt + 1} tries)" if attempt else ""
            fail(f"could not fetch {url}: HTTP {e.code} {e.reason}{tries}")
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            fail(f"could not fetch {url}: {reason} (no network? check the connection or proxy and run again)")


def retry_delay(retry_after, default):
    """Seconds to wait before asking again: the server's Retry-After when it is a number of seconds
    (the HTTP-date form is rare enough to ignore), else our default; never more than MAX_RETRY_DELAY."""
    try:
        seconds = float(retry_after)
    except (TypeError, ValueError):
        seconds = default
    return min(max(seconds, 0.0), MAX_RETRY_DELAY)


def get_json(url):
    with open_url(url) as response:
        try:
            return json.loads(response.read().decode("utf-8")), response.headers.get("Link", "")
        except (ValueError, OSError) as e:
            fail(f"{url} did not return JSON ({e})")


def hf_url(repo, path, revision):
    """The download address of a file of a Hugging Face dataset repo at `revision` (a commit, ideally)."""
    return f"{hf_endpoint()}/datasets/{repo}/resolve/{revision}/{urllib.parse.quote(path)}"


def hf_files(repo, revision, path="", recursive=False):
    """The files of a Hugging Face dataset repo at `revision` under `path`: [{"path", "size", "sha256" or
    None}], sorted by path. Uses the Hub's tree API (paginated by a Link: <...>; rel="next" header)."""
    url = f"{hf_endpoint()}/api/datasets/{repo}/tree/{revision}"
    url += f"/{urllib.parse.quote(path)}" if path else ""
    url += "?recursive=true" if recursive else ""
    files = []
    while url:
        entries, link = get_json(url)
        if not isinstance(entries, list):
            fail(f"{url}: expected a list of files, got {str(entries)[:200]}")
        for e in entries:
            if e.get("type") != "file":
                continue
            lfs = e.get("lfs") or {}
            oid = lfs.get("oid") if isinstance(lfs.get("oid"), str) else None
            sha256 = oid if oid and re.fullmatch(r"[0-9a-f]{64}", oid) else None  # LFS oid = sha256 of the content
            files.append({"path": e["path"], "size": int(e["size"]), "sha256": sha256})
        nxt = re.search(r'<([^>]+)>;\s*rel="next"', link or "")
        url = nxt.group(1) if nxt else None
    return sorted(files, key=lambda f: f["path"])


def fetch(url, dest, size=None, sha256=None, desc=None):
    """Download url to dest, resumably: bytes go to dest + ".part", which becomes dest only when whole
    (its size equals `size` or the server's Content-Length, its sha256 matches if given). A broken
    download keeps its .part and the next call continues it with an HTTP Range request. Returns dest."""
    if os.path.exists(dest):
        if size is not None and os.path.getsize(dest) != size:
            fail(f"{dest} is {os.path.getsize(dest)} bytes but {url} has {size}: delete it and run again")
        return dest
    part = dest + ".part"
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if size is not None and have > size:  # not a prefix of this file: start again
        os.remove(part)
        have = 0
    try:
        response = open_url(url, {"Range": f"bytes={have}-"} if have else None)
    except urllib.error.HTTPError:  # 416: the .part already holds every byte
        response = None
    if response is not None:
        with response:
            have = _resume_offset(response, have)
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            if size is not None and total is not None and total != size:
                fail(f"{url} sends {total} bytes but its listing says {size}; the file changed upstream "
                     "(run again later)")
            os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
            with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                               unit_divisor=1024,
                                                               desc=desc or os.path.basename(dest)) as bar:
                try:
                    while chunk := response.read(CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
                except (OSError, ValueError) as e:  # connection reset, timeout, IncompleteRead
                    f.flush()
                    fail(f"download of {url} broke after {f.tell()} bytes ({type(e).__name__}: {e}); "
                         f"{part} is kept: run again to resume")
    got = os.path.getsize(part) if os.path.exists(part) else 0
    expected = size if size is not None else (total if response is not None else None)
    if expected is not None and got != expected:
        fail(f"download of {url} stopped at {got} of {expected} bytes; {part} is kept: run again to resume")
    if sha256 and file_sha256(part) != sha256:
        os.remove(part)
        fail(f"{url} failed its checksum (sha256 is not {sha256}); the download was deleted: run again")
    os.replace(part, dest)
    return dest


def _resume_offset(response, have):
    """Where the body the server sends starts: `have` for a 206 that continues our .part, 0 when the
    server ignored the Range header (200) or answered for another range."""
    if not have:
        return 0
    if getattr(response, "status", 200) != 206:
        return 0
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return have if match and int(match.group(1)) == have else 0


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"sha256 {os.path.basename(path)}", leave=False) as bar:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


# ---- parquet (optional) -----------------------------------------------------------------------------

def read_parquet(path, columns, batch_size=1024):
    """Rows of a parquet file as dicts of `columns`, a batch at a time (bounded memory). The file must
    be whole (PAR1 at both ends) and have every column, or we stop with a message naming it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        fail(f"reading {path} needs pyarrow, which is optional: pip install -r requirements-data.txt")
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, os.path.getsize(path) - 4))
        tail = f.read(4)
    if head != b"PAR1" or tail != b"PAR1":
        fail(f"{path} is not a whole parquet file (no PAR1 marker at both ends): delete it and run again")
    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid/OSError for corrupt files
        fail(f"{path} is not a readable parquet file ({type(e).__name__}: {e}): delete it and run again")
    names = parquet.schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
        fail(f"{path} does not have the expected columns: missing {missing} (it has {names})")
    for batch in parquet.iter_batches(batch_size=batch_size, columns=list(columns)):
        yield from batch.to_pylist()


# ---- writing ----------------------------------------------------------------------------------------

def write_jsonl(path, rows):
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def update_manifest(out_dir, update):
    """Read <out_dir>/manifest.json (or start one), let update(manifest) change its own keys, write it
    back atomically. Each script owns its keys (languages/groups, tasks, instructions), so the three
    scripts can run in any order into one data folder, like the lab's single manifest."""
    path = os.path.join(out_dir, "manifest.json")
    manifest = {"name": "real", "version": 1, "languages": [],
                "groups": {"pretraining": [], "adapting": [], "other": []}, "tasks": {}}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                manifest = json.load(f)
        except ValueError as e:
            fail(f"{path} is not valid JSON ({e}); fix or delete it")
    update(manifest)
    with atomic_open(path) as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
    return manifest
