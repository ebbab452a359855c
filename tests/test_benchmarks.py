"""benchmarks.py: multiple-choice log-likelihoods (batched, against one full forward pass per choice),
acc / acc_bytes / margin / gold_bpb / acc_prior / acc_calibrated on a model whose probabilities are known, context and
choice split as lm-evaluation-harness splits them, generation (batched, stop tokens, the answer budget)
and prompts."""

import math
from contextlib import nullcontext

import pytest
import torch
from test_evaluate import byte_tokenizer, tiny_model, unigram_model

from evaluate import EvaluateConfig
from evaluation import benchmarks
from pipeline import chat

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
                 "choices": [" " + text(m), " " + text(m + 3)]}
                for k, (n, m) in enumerate([(3, 2), (40, 4), (9, 30), (20, 1), (1, 5)])]
    runs = [benchmarks.run_multiple_choice(model, tok, examples, examples, EvaluateConfig(mc_batch_size=b), False, True,
                                           nullcontext()) for b in (1, 3, 32)]
    for scores, picks in runs:
        # a choice of 31 bytes + separator
        assert picks[2] is None and all(p is not None for k, p in enumerate(picks) if k != 2)
        assert picks == runs[0][1] and scores == pytest.approx(runs[0][0], abs=1e-5)
    # the scores by hand from one full forward pass per choice
    acc, prior, calibrated, margins, nats, n_bytes = [], [], [], [], 0.0, 0
    for k, ex in enumerate(examples):
        if k == 2:
            continue
        ll = full_forward_logliks(model, [tok.eot_id] + tok.encode(ex["context"]),
                                  [tok.encode(c) for c in ex["choices"]])
        alone = full_forward_logliks(model, [tok.eot_id], [tok.encode(c) for c in ex["choices"]])
        acc.append(max(range(2), key=ll.__getitem__) == ex["label"])
        prior.append(max(range(2), key=alone.__getitem__) == ex["label"])
        calibrated.append(max(range(2), key=lambda j: ll[j] - alone[j]) == ex["label"])
        margins.append(ll[ex["label"]] - ll[1 - ex["label"]])
        nats -= ll[ex["label"]]
        n_bytes += len(ex["choices"][ex["label"]].encode())
    # the by-hand picks differ, so acc_calibrated is not acc or acc_prior under another name
    assert calibrated != acc and calibrated != prior
    assert runs[0][0] == pytest.approx({"acc": sum(acc) / 4, "acc_prior": sum(prior) / 4,
                                        "acc_calibrated": sum(calibrated) / 4,
                                        "acc_bytes": runs[0][0]["acc_bytes"], "margin": sum(margins) / 4,
                                        "gold_bpb": nats / math.log(2) / n_bytes}, abs=1e-5)


def test_multiple_choice_metrics_on_a_model_with_known_probabilities():
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("x")], logits[ord("y")] = 5.0, 6.0
    model = unigram_model(tok, logits)
    lp_x, lp_y = [torch.log_softmax(logits, -1)[ord(c)].item() for c in "xy"]
    # "x" is likelier than "yyyy" (log p(x) > 4 log p(y)) but less likely per byte (log p(x) < log p(y))
    assert lp_x > 4 * lp_y and lp_x < lp_y
    scores = benchmarks.score_choices(model, [[tok.eot_id] + tok.encode("q")],
                                      [[tok.encode("x"), tok.encode("yyyy")]], 8)
    assert scores[0] == pytest.approx([lp_x, 4 * lp_y], abs=1e-4)
    cfg = EvaluateConfig(shots=0)
    # a unigram model ignores the context: the prior (the choices after <|endoftext|> alone) picks as acc does,
    # and with the prior taken out every choice scores 0: acc_calibrated's tie goes to the first choice
    for label, expected in ((0, {"acc": 1.0, "acc_prior": 1.0, "acc_calibrated": 1.0, "acc_bytes": 0.0,
                                 "margin": lp_x - 4 * lp_y, "gold_bpb": -lp_x / math.log(2)}),
                            (1, {"acc": 0.0, "acc_prior": 0.0, "acc_calibrated": 0.0, "acc_bytes": 1.0,
                                 "margin": 4 * lp_y - lp_x, "gold_bpb": -lp_y / math.log(2)})):
        ex = {"task": "t", "lang": "zz", "id": "t-0", "kind": "mc", "context": "q", "choices": ["x", "yyyy"],
              "label": label}
        got, _ = benchmarks.run_task(model, tok, {"kind": "mc"}, [ex], [ex], cfg, False, False, nullcontext(),
                                     set(), "zz")
        assert got == pytest.approx(expected, abs=1e-4)


def test_generation_stops_at_the_end_of_the_line():
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("a")] = 20.0  # greedy: "aaaa..." forever
    model = unigram_model(tok, logits)
    ex = {"task": "t", "lang": "en", "id": "t-0", "kind": "gen", "prompt": "say a", "answers": ["aaaa"],
          "metric": "exact"}
    cfg = EvaluateConfig(gen_tokens=4)
    scores, outputs = benchmarks.run_task(model, tok, {"kind": "gen", "spbleu": False}, [ex], [ex], cfg, False, True,
                                          nullcontext(), benchmarks.stop_ids(tok, False), "en")
    assert outputs == ["aaaa"] and scores["exact"] == 1.0
    logits[ord("\n")] = 30.0  # now a newline comes first: the answer is empty
    scores, outputs = benchmarks.run_task(unigram_model(tok, logits), tok, {"kind": "gen", "spbleu": False}, [ex], [ex],
                                          cfg, False, True, nullcontext(), benchmarks.stop_ids(tok, False), "en")
    assert outputs == [""] and scores["exact"] == 0.0


def test_prompts_few_shot_and_chat():
    tok = byte_tokenizer()
    pool = [{"task": "t", "lang": "en", "id": f"t-{k}", "kind": "mc", "context": f"c{k}", "choices": [" no", " yes"],
             "label": 1} for k in range(5)]
    demos = benchmarks.pick_demos(pool, pool[0], 2, seed=7)
    assert len(demos) == 2 and pool[0] not in demos
    parallel = [dict(e, lang="yy") for e in pool]  # the same meanings in another language: the same demonstrations
    assert [d["id"] for d in benchmarks.pick_demos(parallel, parallel[0], 2, seed=7)] == [d["id"] for d in demos]
    context = benchmarks.build_prompt(tok, pool[0], demos, chat=False, spaces=True)
    assert (context[0] == tok.eot_id
            and tok.decode(context[1:]) == f"{demos[0]['context']} yes\n\n{demos[1]['context']} yes\n\nc0")
    # context + choice is the string scored; an assistant's answer starts with the one space render puts there
    choices = lambda ex, chat: [  # noqa: E731
        tok.decode(c) for c in benchmarks.scoring_items(tok, ex, [], chat, True)[0][1]]
    assert choices(pool[0], False) == [" no", " yes"]
    assert choices(dict(pool[0], choices=["no", "  yes"]), True) == [" no", " yes"]
    # a finetuned model: ChatML with the system prompt, demonstrations as earlier turns, their answers rendered as
    # render does
    context = benchmarks.build_prompt(tok, pool[0], demos[:1], chat=True, spaces=True)
    assert context == chat.render_prompt(tok, [{"role": "user", "content": demos[0]["context"]},
                                               {"role": "assistant", "content": "yes"},
                                               {"role": "user", "content": "c0"}])
    gen = {"task": "g", "lang": "en", "id": "g-0", "kind": "gen", "prompt": "Q: 2+2?\nAnswer:", "answers": ["4"],
           "metric": "exact"}
    demo = dict(gen, prompt="Q: 1+1?\nAnswer:", answers=["2"])  # a generative answer gets a space, not without spaces
    assert (tok.decode(benchmarks.build_prompt(tok, gen, [demo], False, True)[1:])
            == "Q: 1+1?\nAnswer: 2\n\nQ: 2+2?\nAnswer:")
    assert (tok.decode(benchmarks.build_prompt(tok, gen, [demo], False, False)[1:])
            == "Q: 1+1?\nAnswer:2\n\nQ: 2+2?\nAnswer:")


def test_the_answer_budget_follows_the_reference():
    ex = {"answers": ["carrots", "a much longer answer"]}  # 20 bytes
    assert benchmarks.answer_budget(ex, 1024) == 42  # twice the bytes, a leading space and the stop token
    assert benchmarks.answer_budget(ex, 64) == 32  # at most half the block: the prompt keeps the other half
    assert benchmarks.answer_budget(ex, 1024, most=8) == 8
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("a")] = 20.0  # greedy: "aaaa..." forever, until the budget
    ex = {"task": "t", "lang": "en", "id": "t-0", "kind": "gen", "prompt": "say a", "answers": ["aaaa"],
          "metric": "exact"}
    _, outputs = benchmarks.run_task(unigram_model(tok, logits), tok, {"kind": "gen", "spbleu": False}, [ex], [ex],
                                     EvaluateConfig(), False, True, nullcontext(),
                                     benchmarks.stop_ids(tok, False), "en")
    assert outputs == ["a" * 10]


def test_batched_generation_gives_the_answers_of_one_at_a_time():
    tok = byte_tokenizer()
    model = tiny_model(tok.n_vocab, seed=7, block_size=48)
    examples = [{"task": "t", "lang": "en", "id": f"t-{k}", "kind": "gen", "prompt": p, "answers": [a], "metric": "f1"}
                for k, (p, a) in enumerate([("a", "bc"), ("some longer prompt", "x"), ("mid prompt", "a longer answer"),
                                            ("x" * 60, "cut prompt")])]
    runs = [benchmarks.run_generation(model, tok, examples, examples, EvaluateConfig(gen_batch_size=b), False, True,
                                      nullcontext(), benchmarks.stop_ids(tok, False), "en", False) for b in (1, 2, 4)]
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_partial_scoring_scores_the_continuation_after_each_context():
    """XWinograd as lm-evaluation-harness scores it: each option fills the blank of its own context, and the
    pick is the context under which the shared continuation is likeliest."""
    tok = byte_tokenizer()
    model = tiny_model(tok.n_vocab, seed=8, block_size=48)
    examples = [{"task": "w", "lang": "en", "id": f"w-{k}", "kind": "mc", "label": k % 2, "continuation": cont,
                 "contexts": [f"The {a} did not fit in the {b} because the {a}",
                              f"The {a} did not fit in the {b} because the {b}"]}
                for k, (a, b, cont) in enumerate([("cup", "box", " was too big."), ("ball", "bag", " was small.")])]
    for ex in examples:
        assert benchmarks._example_problem(ex, "w", "en", "mc") is None
    scores, picks = benchmarks.run_multiple_choice(model, tok, examples, examples, EvaluateConfig(), False, True,
                                                   nullcontext())
    acc, nats, n_bytes = [], 0.0, 0
    for ex, pick in zip(examples, picks):
        ll = [full_forward_logliks(model, [tok.eot_id] + tok.encode(c), [tok.encode(ex["continuation"])])[0]
              for c in ex["contexts"]]
        assert pick[0] == pick[1] == max(range(2), key=ll.__getitem__)  # one continuation: per byte picks the same
        acc.append(pick[0] == ex["label"])
        nats -= ll[ex["label"]]
        n_bytes += len(ex["continuation"].encode())
    assert scores["acc"] == sum(acc) / 2 and scores["gold_bpb"] == pytest.approx(nats / math.log(2) / n_bytes, abs=1e-5)
    bad = dict(examples[0], context="x")
    assert "not 'context' or 'choices'" in benchmarks._example_problem(bad, "w", "en", "mc")
    assert "'continuation'" in benchmarks._example_problem(dict(examples[0], continuation=" "), "w", "en", "mc")
    assert "out of range" in benchmarks._example_problem(dict(examples[0], label=2), "w", "en", "mc")


def test_context_and_choice_are_split_as_the_harness_splits_them():
    """lm-evaluation-harness encodes context + choice as one string and gives the choice the ids after as
    many as the context has alone; the context's trailing whitespace moves onto the choice. In a script
    without spaces a token spans the boundary: here the hand-made merge "bc" ("b" ends the context, "c"
    starts a choice), which encoding the choice apart would never give it."""
    tok = byte_tokenizer([b"bc", b"ab", b" y"])
    bc, ab, space_y = 256, 257, 258
    ex = {"task": "t", "lang": "zz", "id": "t-0", "kind": "mc", "context": "xab", "choices": ["c", "d"], "label": 0}
    [(context, choices)] = benchmarks.scoring_items(tok, ex, [], False, False)
    assert tok.encode("xabc") == [ord("x"), ord("a"), bc] and tok.encode("c") == [ord("c")]
    assert context == [tok.eot_id, ord("x"), ab] and choices == [[bc], [ord("d")]]
    assert benchmarks.encode_pairs(tok, "q ", ["yes", "no"]) == ([ord("q")], [[space_y, ord("e"), ord("s")],
                                                                              [ord(" "), ord("n"), ord("o")]])
    # "xa" + "b" is "x ab", no longer than "x a": the choice has no ids of its own and is encoded apart
    assert benchmarks.encode_pairs(tok, "xa", ["b"]) == ([ord("x"), ord("a")], [[ord("b")]])
    # the scores are the log-likelihoods of these ids, and gold_bpb counts the bytes of the tokens scored
    model = tiny_model(tok.n_vocab, seed=9, block_size=16)
    scores, _ = benchmarks.run_multiple_choice(model, tok, [ex], [ex], EvaluateConfig(), False, False, nullcontext())
    ll = full_forward_logliks(model, context, choices)
    assert scores["margin"] == pytest.approx(ll[0] - ll[1], abs=1e-5)
    assert scores["gold_bpb"] == pytest.approx(-ll[0] / math.log(2) / 2, abs=1e-5)  # "bc": two bytes
    # a chat answer is encoded apart from its turn's header, as render encodes it for training
    [(_, chat_choices)] = benchmarks.scoring_items(tok, ex, [], True, False)
    assert chat_choices == [tok.encode(" c"), tok.encode(" d")]


def test_the_answer_prior_ignores_the_context():
    tok = byte_tokenizer()
    model = tiny_model(tok.n_vocab, seed=10, block_size=48)
    base = {"task": "t", "lang": "en", "kind": "mc", "choices": [" a", " bb", " ccc"]}
    alone = full_forward_logliks(model, [tok.eot_id], [tok.encode(c) for c in base["choices"]])
    likeliest = max(range(3), key=alone.__getitem__)
    for label in range(3):
        run = lambda context: benchmarks.run_multiple_choice(  # noqa: E731
            model, tok, [dict(base, id="t-0", context=context, label=label)], [], EvaluateConfig(), False, True,
            nullcontext())[0]
        short, long = run("the cat"), run("a much longer context about something else entirely")
        assert short["acc_prior"] == long["acc_prior"] == (label == likeliest)
        assert short["margin"] != long["margin"]  # the context does change the other scores
    # a choice's prior does not depend on its example: each distinct choice is scored once
    lists = [[tok.encode(c) for c in base["choices"]], [tok.encode(" bb"), tok.encode(" a"), tok.encode(" a")]]
    prior = benchmarks.score_alone(model, tok, lists, 8)
    assert list(prior) == [tuple(ids) for ids in lists[0]] and list(prior.values()) == pytest.approx(alone, abs=1e-5)
    # partial scoring: every option is the same continuation, so without the contexts the options tie
    ex = {"task": "w", "lang": "en", "id": "w-0", "kind": "mc", "label": 1, "continuation": " ran.",
          "contexts": ["The cat", "The dog"]}
    assert benchmarks.run_multiple_choice(model, tok, [ex], [], EvaluateConfig(), False, True,
                                          nullcontext())[0]["acc_prior"] == 0.5
