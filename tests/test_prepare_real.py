"""The real-data scripts (data/wikipedia, data/instructions) on tiny fixtures written here in each source's
raw format, served by a fake web (conftest.py's fixture web): nothing touches the network. The parquet tests
need pyarrow (optional, requirements-data.txt) and are skipped without it."""

import hashlib
import importlib.util
import io
import json
import os
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


wiki = load("data/wikipedia/prepare.py", "wikipedia_prepare")
instructions = load("data/instructions/prepare.py", "instructions_prepare")
benchmarks = load("data/benchmarks/prepare.py", "benchmarks_prepare")
from conftest import HF, tree  # noqa: E402  (the fake web itself is conftest.py's fixture web)
from data import shared  # noqa: E402  (the scripts put the repo root on sys.path)
from pipeline.documents import read_documents  # noqa: E402


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)


@pytest.fixture(scope="module")
def tok():
    import tokenizer

    texts = ["The cat sat on the mat.\nA second line.", "Le chat est sur le tapis. 猫在垫子上。",
             "numbers 123 4567"] * 20
    return tokenizer.train(texts, 300)


# ---- downloads ------------------------------------------------------------------------------------

def test_fetch_resumes_an_interrupted_download(web, tmp_path):
    url, body = "https://example.org/big.bin", bytes(range(256)) * 4000
    web.files[url] = body
    web.breaks[url] = 300_000
    dest = str(tmp_path / "raw" / "big.bin")
    with pytest.raises(SystemExit, match="broke after 300000 bytes.*run again to resume"):
        shared.fetch(url, dest, size=len(body), sha256=hashlib.sha256(body).hexdigest())
    assert not os.path.exists(dest) and os.path.getsize(dest + ".part") == 300_000  # never taken for whole
    shared.fetch(url, dest, size=len(body), sha256=hashlib.sha256(body).hexdigest())
    assert web.requests[-1] == (url, "bytes=300000-")  # continued, not restarted
    assert open(dest, "rb").read() == body and not os.path.exists(dest + ".part")


def test_fetch_refuses_wrong_size_or_checksum(web, tmp_path):
    url = "https://example.org/shard.parquet"
    web.files[url] = b"PAR1 some bytes PAR1"
    dest = str(tmp_path / "shard.parquet")
    with pytest.raises(SystemExit, match="sends 20 bytes but its listing says 21"):
        shared.fetch(url, dest, size=21)
    with pytest.raises(SystemExit, match="failed its checksum"):
        shared.fetch(url, dest, size=20, sha256="0" * 64)
    assert files_under(tmp_path) == []
    with open(dest, "wb") as f:  # a whole file of another size already there: stop, say what to do
        f.write(b"short")
    with pytest.raises(SystemExit, match="shard.parquet is 5 bytes but .* has 20: delete it"):
        shared.fetch(url, dest, size=20)


@pytest.mark.parametrize("script, args", [(wiki, ["--langs", "en"]), (instructions, ["--sources", "dolly"]),
                                          (benchmarks, ["--tasks", "xcopa,flores"])])
def test_offline_names_what_failed_and_writes_nothing(script, args, monkeypatch, tmp_path):
    def offline(request, timeout=None):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(SystemExit) as e:
        script.main(args + ["--out", str(tmp_path / "data")])
    assert "could not fetch https://" in str(e.value) and "name resolution" in str(e.value)
    assert files_under(tmp_path) == []


def test_hf_endpoint_and_token(web, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/hf/")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    body = b"x" * 10
    web.files["https://mirror.example/hf/api/datasets/o/d/tree/abc123/sub"] = tree([("sub/f.bin", body)])
    web.files["https://mirror.example/hf/datasets/o/d/resolve/abc123/sub/f.bin"] = body
    web.files["https://example.org/other.bin"] = body
    files = shared.hf_files("o/d", "abc123", "sub")
    assert [f["path"] for f in files] == ["sub/f.bin"]
    shared.fetch(shared.hf_url("o/d", "sub/f.bin", "abc123"), str(tmp_path / "f.bin"), size=files[0]["size"])
    shared.fetch("https://example.org/other.bin", str(tmp_path / "other.bin"))
    assert [r.full_url for r in web.sent][:2] == ["https://mirror.example/hf/api/datasets/o/d/tree/abc123/sub",
                                                  "https://mirror.example/hf/datasets/o/d/resolve/abc123/sub/f.bin"]
    # the hub only
    assert [r.get_header("Authorization") for r in web.sent] == ["Bearer hf_secret", "Bearer hf_secret", None]
    # the hub redirects downloads to a CDN: the token must not follow the redirect there
    redirected = urllib.request.HTTPRedirectHandler().redirect_request(web.sent[1], None, 302, "Found", {},
                                                                       "https://cdn.example/f.bin")
    assert redirected.get_header("Authorization") is None and redirected.get_header("User-agent")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HF_ENDPOINT")
    (tmp_path / "f.bin").unlink()
    web.files[f"{HF}/datasets/o/d/resolve/abc123/sub/f.bin"] = body
    shared.fetch(shared.hf_url("o/d", "sub/f.bin", "abc123"), str(tmp_path / "f.bin"))
    assert (web.sent[-1].full_url.startswith("https://huggingface.co/")
            and web.sent[-1].get_header("Authorization") is None)


# ---- Wikipedia ------------------------------------------------------------------------------------

def test_wikipedia_reader_writes_the_lab_layout(tmp_path):
    records = [{"id": "1", "text": "Title one\r\n\r\nFirst paragraph.  \n\n\n\nSecond\u2029paragraph."},
               {"id": "2", "text": "   \n \n"},  # nothing left: dropped
               {"id": "3", "text": "Only\tone line"}] + [{"id": str(k), "text": f"Article {k}.\n\nMore {k}."}
                                                         for k in range(4, 40)]
    pulled = []

    def stream():  # an iterator, like parquet rows: the writer must stop pulling once it has enough
        for r in records:
            pulled.append(r["id"])
            yield r

    train, val = str(tmp_path / "en" / "train.txt"), str(tmp_path / "en" / "val.txt")
    stats = wiki.write_language(stream(), train, val, "en", max_bytes=200, val_fraction=0.2)
    docs = [*read_documents(val), *read_documents(train)]
    assert docs[0] == "Title one\nFirst paragraph.\nSecond\nparagraph."  # the first article goes to val
    assert "Only\tone line" in docs and all(d.strip() and "\n\n" not in d for d in docs)
    assert stats["bytes"]["train"] + stats["bytes"]["val"] >= 200 and len(pulled) < len(records)
    assert len(docs) == stats["docs"]["train"] + stats["docs"]["val"]
    with open(train, encoding="utf-8") as f:
        assert "\n\n\n" not in f.read()


def test_streamed_token_file_is_exactly_common_token_file(tok, tmp_path):
    from pipeline import common

    text = "First doc\nline two\r\n\r\nSecond doc 猫\n\n\n\nthird\r\rfourth\n\n  \n\nlast é"
    ours, theirs = tmp_path / "a" / "val.txt", tmp_path / "b" / "val.txt"
    for p in (ours, theirs):
        p.parent.mkdir()
        p.write_bytes(text.encode("utf-8"))
    bin_path = f"{ours}.{tok.fingerprint()}.bin"
    n = wiki.tokenize_text_file(tok, str(ours), bin_path, batch_bytes=8)  # several batches
    expected = np.asarray(common.token_file(tok, str(theirs)))
    assert n == len(expected) and open(bin_path, "rb").read() == expected.tobytes()
    assert np.array_equal(common.token_file(tok, str(ours)), expected)  # train.py picks our file up as is


def test_wikipedia_language_codes(web, tmp_path):
    out = str(tmp_path / "data")
    with pytest.raises(SystemExit, match="'english!' is not a language code"):
        wiki.main(["--langs", "en,english!", "--out", out])
    with pytest.raises(SystemExit, match="'fr' is in both pretraining and adapting"):
        wiki.main(["--langs", "fr", "--adapting", "fr", "--out", out])
    with pytest.raises(SystemExit, match="unknown language code 'xx': wikimedia/wikipedia has no config 20231101.xx"):
        wiki.main(["--langs", "xx", "--out", out])
    assert files_under(tmp_path) == []


def parquet_bytes(rows, columns=("id", "url", "title", "text")):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    buffer = io.BytesIO()
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in columns}), buffer)
    return buffer.getvalue()


def test_wikipedia_end_to_end_from_parquet(web, tok, tmp_path):
    from pipeline import common

    pytest.importorskip("pyarrow")
    for code, n_shards in (("en", 2), ("fr", 1)):
        entries = []
        for s in range(n_shards):
            rows = [{"id": f"{s}-{k}", "url": "u", "title": f"T{k}", "text": f"{code} article {s}.{k}\n\nbody {k}."}
                    for k in range(30)]
            entries.append((f"20231101.{code}/train-0000{s}-of-0000{n_shards}.parquet", parquet_bytes(rows)))
        web.files[f"{HF}/api/datasets/wikimedia/wikipedia/tree/{wiki.REVISION}/20231101.{code}"] = tree(entries)
        for path, body in entries:
            web.files[f"{HF}/datasets/wikimedia/wikipedia/resolve/{wiki.REVISION}/{path}"] = body
    out = str(tmp_path / "data")
    tok_path = str(tmp_path / "tok.tiktoken")
    tok.save(tok_path)
    wiki.main(["--langs", "en", "--adapting", "fr", "--max_bytes_per_lang", "400", "--tokenize", tok_path,
               "--out", out])
    assert web.fetched("train-00000-of-00002") and not web.fetched("train-00001-of-00002")  # budget met by shard 1
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["groups"] == {"pretraining": ["en"], "adapting": ["fr"], "other": []}
    fr = next(e for e in manifest["languages"] if e["code"] == "fr")
    assert (fr["name"], fr["script"], fr["group"], fr["train"]) == ("French", "Latin", "adapting", "text/fr/train.txt")
    for split in ("train", "val"):  # the token file is the one train.py would have made itself
        txt = os.path.join(out, "text", "fr", f"{split}.txt")
        theirs = str(tmp_path / f"copy_{split}.txt")
        shutil.copy(txt, theirs)
        assert np.array_equal(common.token_file(tok, txt), common.token_file(tok, theirs))
    n_requests = len(web.requests)
    wiki.main(["--langs", "en", "--adapting", "fr", "--out", out])
    assert len(web.requests) == n_requests  # already prepared (even with another budget): nothing fetched again
    wiki.main(["--langs", "", "--adapting", "fr", "--max_bytes_per_lang", "300", "--overwrite", "--out", out])
    assert not [f for f in os.listdir(os.path.join(out, "text", "fr")) if f.endswith(".bin")]  # stale token files go

    bad = parquet_bytes([{"id": "1", "url": "u", "title": "t"}], columns=("id", "url", "title"))
    web.files[f"{HF}/api/datasets/wikimedia/wikipedia/tree/{wiki.REVISION}/20231101.sw"] = tree(
        [("20231101.sw/train-00000-of-00001.parquet", bad)])
    web.files[f"{HF}/datasets/wikimedia/wikipedia/resolve/{wiki.REVISION}"
              "/20231101.sw/train-00000-of-00001.parquet"] = bad
    with pytest.raises(SystemExit,
                       match=r"train-00000-of-00001.parquet does not have the expected columns: missing \['text'\]"):
        wiki.main(["--langs", "sw", "--out", out])
    assert not os.path.exists(os.path.join(out, "text", "sw"))


# ---- instructions ---------------------------------------------------------------------------------

def test_instructions_dolly_to_messages(web, tok, tmp_path):
    from pipeline import chat

    rows = ([{"instruction": f"Question {k}?", "context": "Some reference text." if k % 2 else "",
              "response": f"Answer {k}.", "category": "closed_qa"} for k in range(40)]
            + [{"instruction": "No answer", "context": "", "response": " ", "category": "x"}])
    body = "\n".join(json.dumps(r) for r in rows).encode()
    listing = f"{HF}/api/datasets/databricks/databricks-dolly-15k/tree/{instructions.DOLLY_REVISION}"
    web.files[f"{HF}/datasets/databricks/databricks-dolly-15k/resolve/{instructions.DOLLY_REVISION}"
              "/databricks-dolly-15k.jsonl"] = body
    out = str(tmp_path / "data")
    # checked against the Hub's listing at the pinned commit: another file there is refused, nothing is written
    web.files[listing] = tree([("databricks-dolly-15k.jsonl", body + b" ")])
    with pytest.raises(SystemExit, match="sends .* bytes but its listing says"):
        instructions.main(["--sources", "dolly", "--out", out])
    web.files[listing] = tree([("databricks-dolly-15k.jsonl", body.replace(b"Answer 1.", b"Answer 7."))])
    with pytest.raises(SystemExit, match="failed its checksum"):
        instructions.main(["--sources", "dolly", "--out", out])
    assert files_under(tmp_path) == []
    web.files[listing] = tree([("databricks-dolly-15k.jsonl", body)])
    counts = instructions.main(["--sources", "dolly", "--val_fraction", "0.2", "--out", out])
    assert counts["train"] + counts["val"] == 40 and counts["val"] >= 1
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["instructions"]["dropped"] == {"dolly": 1}
    lines = [json.loads(line) for split in ("train", "val")
             for line in open(os.path.join(out, manifest["instructions"][split]))]
    for example in lines:
        ids, mask = chat.render(tok, example["messages"])  # what finetune.py does with each line
        assert sum(mask) > 0
    assert ({"role": "user", "content": "Question 1?\n\nSome reference text."}
            in [m for e in lines for m in e["messages"]])


def test_openorca_records_to_messages(web, tmp_path):
    assert instructions.orca_example({"system_prompt": "", "question": "Q?", "response": "A."}) == \
        {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}
    assert instructions.orca_example({"system_prompt": "Be brief.", "question": "Q?",
                                      "response": "A."})["messages"][0] == {"role": "system", "content": "Be brief."}
    assert instructions.orca_example({"system_prompt": "", "question": "Q?", "response": ""}) is None
    pytest.importorskip("pyarrow")
    body = parquet_bytes([{"id": f"o{k}", "system_prompt": "", "question": f"q{k}", "response": f"r{k}"}
                          for k in range(10)], columns=("id", "system_prompt", "question", "response"))
    web.files[f"{HF}/api/datasets/Open-Orca/OpenOrca/tree/{instructions.ORCA_REVISION}"] = tree(
        [("1M-GPT4-Augmented.parquet", body)])
    web.files[f"{HF}/datasets/Open-Orca/OpenOrca/resolve/{instructions.ORCA_REVISION}/1M-GPT4-Augmented.parquet"] = body
    counts = instructions.main(["--max_examples", "6", "--out", str(tmp_path)])
    assert counts["train"] + counts["val"] == 6
