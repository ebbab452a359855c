"""benchmarks.py: multiple-choice log-likelihoods (batched, against one full forward pass per choice),
acc / acc_bytes / margin / gold_bpb on a model whose probabilities are known, generation (batched, stop
tokens, the answer budget) and prompts."""

import math
from contextlib import nullcontext

import pytest
import torch

from evaluation import benchmarks
from pipeline import chat
from evaluate import EvaluateConfig
from test_evaluate import byte_tokenizer, tiny_model, unigram_model

torch.set_num_threads(1)


def full_forward_logliks(model, context, choices):
    """One example at a time, the plainest way: one forward pass over (context cut on the left) + choice."""
    longest = max(len(c) for c in choices)
    context = context[-(model.config.block_size - longest):]
    scores = []
    for choice in choices:
        ids = torch.tensor([context + choice])
        with torch.no_grad():
            scores.append(-model.token_nll(ids[:, :-1], ids[:, 1:])[0, len(context) - 1:].sum().item())
    return scores


def test_batched_choices_equal_one_forward_pass_per_choice():
    """Examples of different lengths (one context cut to fit, single-token choices, 2 to 4 choices), in
    batches of every size: the same log-likelihoods as one full forward pass per choice."""
    model = tiny_model(260, seed=5, block_size=24)
    g = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(0, 256, (n,), generator=g).tolist()
    shared = ids(6)  # as a chat's system prompt: batches run it once (but the context cut on the left loses it)
    contexts = [[256] + shared + ids(n) for n in (4, 1, 24, 11, 0, 17)]  # 31 + a choice of 6 tokens: cut on the left
    choices = [[ids(1), ids(3), ids(2)], [ids(5), ids(1)], [ids(6), ids(2), ids(4), ids(1)], [ids(1), ids(1)],
               [ids(2), ids(7)], [ids(3), ids(3), ids(9)]]
    expected = [full_forward_logliks(model, c, cs) for c, cs in zip(contexts, choices)]
    for batch_size in (1, 2, 4, 6):
        got = benchmarks.score_choices(model, contexts, choices, batch_size)
        for e, g_ in zip(expected, got):
            assert g_ == pytest.approx(e, abs=1e-5)
            assert max(range(len(e)), key=e.__getitem__) == max(range(len(g_)), key=g_.__getitem__)
    with pytest.raises(ValueError, match="leaves no room"):
        benchmarks.score_choices(model, [[256]], [[ids(24), ids(2)]], 4)


def test_multiple_choice_skips_what_does_not_fit_and_does_not_depend_on_the_batch():
    tok = byte_tokenizer()
    model = tiny_model(tok.n_vocab, seed=6, block_size=32)
    text = lambda n: "".join(chr(97 + (7 * k + n) % 26) for k in range(n))
    examples = [{"task": "t", "lang": "en", "id": f"t-{k}", "kind": "mc", "context": text(n), "label": k % 2,
                 "choices": [" " + text(m), " " + text(m + 3)]} for k, (n, m) in enumerate([(3, 2), (40, 4), (9, 30), (20, 1), (1, 5)])]
    runs = [benchmarks.run_multiple_choice(model, tok, examples, examples, EvaluateConfig(mc_batch_size=b), False, True, nullcontext())
            for b in (1, 3, 32)]
    for scores, picks in runs:
        assert picks[2] is None and all(p is not None for k, p in enumerate(picks) if k != 2)  # a choice of 31 bytes + separator
        assert picks == runs[0][1] and scores == pytest.approx(runs[0][0], abs=1e-5)
    # the scores by hand from one full forward pass per choice
    acc, margins, nats, n_bytes = [], [], 0.0, 0
    for k, ex in enumerate(examples):
        if k == 2:
            continue
        ll = full_forward_logliks(model, benchmarks.build_prompt(tok, ex, [], False, True), benchmarks.choice_ids(tok, ex, False))
        acc.append(max(range(2), key=ll.__getitem__) == ex["label"])
        margins.append(ll[ex["label"]] - ll[1 - ex["label"]])
        nats -= ll[ex["label"]]
        n_bytes += len(ex["choices"][ex["label"]].encode())
    assert runs[0][0] == pytest.approx({"acc": sum(acc) / 4, "acc_bytes": runs[0][0]["acc_bytes"], "margin": sum(margins) / 4,
                                        "gold_bpb": nats / math.log(2) / n_bytes}, abs=1e-5)


def test_multiple_choice_metrics_on_a_model_with_known_probabilities():
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("x")], logits[ord("y")] = 5.0, 6.0
    model = unigram_model(tok, logits)
    lp_x, lp_y = [torch.log_softmax(logits, -1)[ord(c)].item() for c in "xy"]
    # "x" is likelier than "yyyy" (log p(x) > 4 log p(y)) but less likely per byte (log p(x) < log p(y))
    assert lp_x > 4 * lp_y and lp_x < lp_y
    scores = benchmarks.score_choices(model, [[tok.eot_id] + tok.encode("q")], [[tok.encode("x"), tok.encode("yyyy")]], 8)
    assert scores[0] == pytest.approx([lp_x, 4 * lp_y], abs=1e-4)
    cfg = EvaluateConfig(shots=0)
    for label, expected in ((0, {"acc": 1.0, "acc_bytes": 0.0, "margin": lp_x - 4 * lp_y, "gold_bpb": -lp_x / math.log(2)}),
                            (1, {"acc": 0.0, "acc_bytes": 1.0, "margin": 4 * lp_y - lp_x, "gold_bpb": -lp_y / math.log(2)})):
        ex = {"task": "t", "lang": "zz", "id": "t-0", "kind": "mc", "context": "q", "choices": ["x", "yyyy"], "label": label}
        got, _ = benchmarks.run_task(model, tok, {"kind": "mc"}, [ex], [ex], cfg, False, False, nullcontext(), set(), "zz")
        assert got == pytest.approx(expected, abs=1e-4)


def test_generation_stops_at_the_end_of_the_line():
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("a")] = 20.0  # greedy: "aaaa..." forever
    model = unigram_model(tok, logits)
    ex = {"task": "t", "lang": "en", "id": "t-0", "kind": "gen", "prompt": "say a", "answers": ["aaaa"], "metric": "exact"}
    cfg = EvaluateConfig(gen_tokens=4)
    scores, outputs = benchmarks.run_task(model, tok, {"kind": "gen", "spbleu": False}, [ex], [ex], cfg, False, True, nullcontext(),
                                        benchmarks.stop_ids(tok, False), "en")
    assert outputs == ["aaaa"] and scores["exact"] == 1.0
    logits[ord("\n")] = 30.0  # now a newline comes first: the answer is empty
    scores, outputs = benchmarks.run_task(unigram_model(tok, logits), tok, {"kind": "gen", "spbleu": False}, [ex], [ex], cfg, False, True,
                                        nullcontext(), benchmarks.stop_ids(tok, False), "en")
    assert outputs == [""] and scores["exact"] == 0.0


def test_prompts_few_shot_and_chat():
    tok = byte_tokenizer()
    pool = [{"task": "t", "lang": "en", "id": f"t-{k}", "kind": "mc", "context": f"c{k}", "choices": [" no", " yes"], "label": 1}
            for k in range(5)]
    demos = benchmarks.pick_demos(pool, pool[0], 2, seed=7)
    assert len(demos) == 2 and pool[0] not in demos
    parallel = [dict(e, lang="yy") for e in pool]  # the same meanings in another language: the same demonstrations
    assert [d["id"] for d in benchmarks.pick_demos(parallel, parallel[0], 2, seed=7)] == [d["id"] for d in demos]
    context = benchmarks.build_prompt(tok, pool[0], demos, chat=False, spaces=True)
    assert context[0] == tok.eot_id and tok.decode(context[1:]) == f"{demos[0]['context']} yes\n\n{demos[1]['context']} yes\n\nc0"
    # context + choice is the string scored; an assistant's answer starts with the one space render puts there
    assert [tok.decode(c) for c in benchmarks.choice_ids(tok, pool[0], chat=False)] == [" no", " yes"]
    assert [tok.decode(c) for c in benchmarks.choice_ids(tok, dict(pool[0], choices=["no", "  yes"]), chat=True)] == [" no", " yes"]
    # a finetuned model: ChatML with the system prompt, demonstrations as earlier turns, their answers rendered as render does
    context = benchmarks.build_prompt(tok, pool[0], demos[:1], chat=True, spaces=True)
    assert context == chat.render_prompt(tok, [{"role": "user", "content": demos[0]["context"]}, {"role": "assistant", "content": "yes"},
                                                    {"role": "user", "content": "c0"}])
    gen = {"task": "g", "lang": "en", "id": "g-0", "kind": "gen", "prompt": "Q: 2+2?\nAnswer:", "answers": ["4"], "metric": "exact"}
    demo = dict(gen, prompt="Q: 1+1?\nAnswer:", answers=["2"])  # a generative answer gets a space, not without spaces
    assert tok.decode(benchmarks.build_prompt(tok, gen, [demo], False, True)[1:]) == "Q: 1+1?\nAnswer: 2\n\nQ: 2+2?\nAnswer:"
    assert tok.decode(benchmarks.build_prompt(tok, gen, [demo], False, False)[1:]) == "Q: 1+1?\nAnswer:2\n\nQ: 2+2?\nAnswer:"


def test_the_answer_budget_follows_the_reference():
    ex = {"answers": ["carrots", "a much longer answer"]}  # 20 bytes
    assert benchmarks.answer_budget(ex, 1024) == 42  # twice the bytes, a leading space and the stop token
    assert benchmarks.answer_budget(ex, 64) == 32  # at most half the block: the prompt keeps the other half
    assert benchmarks.answer_budget(ex, 1024, most=8) == 8
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("a")] = 20.0  # greedy: "aaaa..." forever, until the budget
    ex = {"task": "t", "lang": "en", "id": "t-0", "kind": "gen", "prompt": "say a", "answers": ["aaaa"], "metric": "exact"}
    _, outputs = benchmarks.run_task(unigram_model(tok, logits), tok, {"kind": "gen", "spbleu": False}, [ex], [ex], EvaluateConfig(), False, True,
                                     nullcontext(), benchmarks.stop_ids(tok, False), "en")
    assert outputs == ["a" * 10]


def test_batched_generation_gives_the_answers_of_one_at_a_time():
    tok = byte_tokenizer()
    model = tiny_model(tok.n_vocab, seed=7, block_size=48)
    examples = [{"task": "t", "lang": "en", "id": f"t-{k}", "kind": "gen", "prompt": p, "answers": [a], "metric": "f1"}
                for k, (p, a) in enumerate([("a", "bc"), ("some longer prompt", "x"), ("mid prompt", "a longer answer"),
                                            ("x" * 60, "cut prompt")])]
    runs = [benchmarks.run_generation(model, tok, examples, examples, EvaluateConfig(gen_batch_size=b), False, True, nullcontext(),
                                      benchmarks.stop_ids(tok, False), "en", False) for b in (1, 2, 4)]
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_partial_scoring_scores_the_continuation_after_each_context():
    """XWinograd as lm-evaluation-harness scores it: each option fills the blank of its own context, and the
    pick is the context under which the shared continuation is likeliest."""
    tok = byte_tokenizer()
    model = tiny_model(tok.n_vocab, seed=8, block_size=48)
    examples = [{"task": "w", "lang": "en", "id": f"w-{k}", "kind": "mc", "label": k % 2, "continuation": cont,
                 "contexts": [f"The {a} did not fit in the {b} because the {a}", f"The {a} did not fit in the {b} because the {b}"]}
                for k, (a, b, cont) in enumerate([("cup", "box", " was too big."), ("ball", "bag", " was small.")])]
    for ex in examples:
        assert benchmarks._example_problem(ex, "w", "en", "mc") is None
    scores, picks = benchmarks.run_multiple_choice(model, tok, examples, examples, EvaluateConfig(), False, True, nullcontext())
    acc, nats, n_bytes = [], 0.0, 0
    for ex, pick in zip(examples, picks):
        ll = [full_forward_logliks(model, [tok.eot_id] + tok.encode(c), [tok.encode(ex["continuation"])])[0] for c in ex["contexts"]]
        assert pick[0] == pick[1] == max(range(2), key=ll.__getitem__)  # one continuation: per byte picks the same
        acc.append(pick[0] == ex["label"])
        nats -= ll[ex["label"]]
        n_bytes += len(ex["continuation"].encode())
    assert scores["acc"] == sum(acc) / 2 and scores["gold_bpb"] == pytest.approx(nats / math.log(2) / n_bytes, abs=1e-5)
    bad = dict(examples[0], context="x")
    assert "not 'context' or 'choices'" in benchmarks._example_problem(bad, "w", "en", "mc")
    assert "'continuation'" in benchmarks._example_problem(dict(examples[0], continuation=" "), "w", "en", "mc")
    assert "out of range" in benchmarks._example_problem(dict(examples[0], label=2), "w", "en", "mc")
