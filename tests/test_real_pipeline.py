"""run.sh at GPU scale (CONFIG=gpu_small), scaled down by an override file, on a data folder shaped exactly
like the one data/wikipedia, data/instructions and data/benchmarks prepare: written by those converters from
their own test fixtures (tests/test_prepare_real.py), not by the lab. It checks that every stage finds what
the real-data path gives it (the manifest's groups, instructions and benchmark files, XWinograd's partial
scoring, the generation metrics per language) and that gpu_small's own sections are the ones that run."""

import json
import os
import subprocess
import sys

import pytest
from test_prepare_benchmarks import benchmark_web
from test_prepare_real import benchmarks, instructions, wiki

from conftest import HF, ROOT, tree

WORDS = {"en": "the cat sat on a mat and the dog ran to the park with a red ball".split(),
         "es": "el gato se sentó en la alfombra y el perro corrió al parque con una pelota".split(),
         "zh": list("猫坐在垫子上狗跑到公园里拿着一个红色的球"),
         "fr": "le chat est assis sur le tapis et le chien court au parc avec une balle".split()}


def articles(lang, n=60):
    """Wikipedia-like records for the converter: a title line, then paragraphs of the language's words."""
    sep = "" if lang == "zh" else " "
    words = WORDS[lang]
    for k in range(n):
        paragraphs = [sep.join(words[(k * 3 + p * 5 + i) % len(words)] for i in range(12 + (k + p) % 7)) + "."
                      for p in range(3)]
        yield {"id": f"{lang}-{k}", "text": f"{lang.upper()} article {k}\n\n" + "\n\n".join(paragraphs)}


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("real") / "wikipedia")
    for code, group in (("en", "pretraining"), ("es", "pretraining"), ("zh", "pretraining"), ("fr", "adapting")):
        text = os.path.join(out, "text", code)
        stats = wiki.write_language(articles(code), os.path.join(text, "train.txt"), os.path.join(text, "val.txt"),
                                    code, max_bytes=None, val_fraction=0.2)
        wiki._record(out, code, group, {**stats, "source": "test fixture"})
    return out


def test_gpu_small_run_sh_on_a_prepared_real_folder(real_folder, web, tmp_path):
    # instructions (Dolly's JSONL) and the benchmarks, through their own converters and a fake web
    rows = [{"instruction": f"Question {k}?", "context": "", "response": f"Answer {k}.", "category": "open_qa"}
            for k in range(40)]
    dolly = "\n".join(json.dumps(r) for r in rows).encode()
    web.files[f"{HF}/datasets/databricks/databricks-dolly-15k/resolve/{instructions.DOLLY_REVISION}"
              "/databricks-dolly-15k.jsonl"] = dolly
    web.files[f"{HF}/api/datasets/databricks/databricks-dolly-15k/tree/{instructions.DOLLY_REVISION}"] = \
        tree([("databricks-dolly-15k.jsonl", dolly)])
    instructions.main(["--sources", "dolly", "--val_fraction", "0.2", "--out", real_folder])
    benchmark_web(web)
    tasks = [t for t in benchmarks.TASKS if t != "flores"]  # spBLEU needs a real sentencepiece model
    benchmarks.main(["--tasks", ",".join(tasks), "--langs", "en,zh,fr", "--out", real_folder])

    # gpu_small, made tiny: the override file replaces what CPU seconds cannot afford, nothing else
    overrides = tmp_path / "tiny.py"
    overrides.write_text(
        'device = "cpu"\ndtype = "float32"\ncompile = "false"\n'
        'train = dict(n_layer=1, n_head=2, n_kv_head=1, n_embd=32, block_size=64, batch_size=4, grad_accum=1, '
        'max_iters=12,\n'
        '             forget_every=4, eval_every=6, eval_tokens=512, log_every=1, progress=False)\n'
        'adapt = dict(batch_size=2, eval_every=0, eval_bytes=256, progress=False)\n'
        'finetune = dict(max_iters=3, batch_size=4, lr=1e-3, val_conversations=4, n_samples=1, progress=False)\n'
        'evaluate = dict(max_examples=3, bpb_bytes=1024, sim_bytes=1024, gen_tokens=8, progress=False)\n')
    env = {**os.environ, "CONFIG": "gpu_small", "OVERRIDES": str(overrides), "OUT": str(tmp_path / "out"),
           "DATA": real_folder, "VOCAB": "300", "BUDGETS": "1024", "OMP_NUM_THREADS": "1", "PYTHON": sys.executable,
           "JOBS": "2"}  # gpu_small runs one at a time (JOBS=1); two at once on the test's two cores
    result = subprocess.run(["bash", "run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    runs = tmp_path / "out" / "run" / "gpu_small" / "seed0"
    ft = json.load(open(runs / "finetune_BA" / "config.json"))
    # gpu_small's section, then the override
    assert ft["data_dir"] == real_folder and ft["epochs"] == 5.0 and ft["batch_size"] == 4
    results = json.load(open(runs / "results.json"))
    assert results["groups"] == ["pretraining", "adapting", "other"] and results["languages"]["fr"] == "adapting"
    assert set(tasks) == set(results["tasks"])
    for task in tasks:  # every benchmark scored for every model, XWinograd by partial scoring included
        metric = f"{task}/{results['tasks'][task]['metric']}"
        assert all(results["metrics"][metric][m]["langs"] for m in ("Baseline", "BA", "AFA", "Control")), metric
    assert results["details"]["AFA"]["tasks"]["xwinograd"]["en"]["n"] == 1
    assert os.path.exists(tmp_path / "out" / "report" / "results.md")
