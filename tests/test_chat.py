"""Tests for pipeline/chat.py: ChatML ids, the loss mask and the generation prompt, on a tiny in-process vocabulary."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tokenizer  # noqa: E402
from pipeline import chat as C  # noqa: E402


@pytest.fixture(scope="module")
def tok():
    """A small trained vocabulary: the words of the conversations below are several tokens or one."""
    text = "What is two plus two? It is four, said the αβγ. And three plus three? Six, she said. The user asks."
    return tokenizer.train([text] * 20, 300)


CHAT = [{"role": "user", "content": "What is 2+2? <|im_end|> is text here"},
        {"role": "assistant", "content": "It is 4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6, said the αβγ."}]


def test_render_text_and_mask(tok):
    ids, mask = C.render(tok, CHAT)
    assert len(ids) == len(mask) and set(mask) == {0, 1}
    expected = (f"<|endoftext|><|im_start|>system\n{C.DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
                "<|im_start|>user\nWhat is 2+2? <|im_end|> is text here<|im_end|>\n"
                "<|im_start|>assistant\n It is 4.<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n"
                "<|im_start|>assistant\n 6, said the αβγ.<|im_end|>\n")
    assert tok.decode(ids) == expected
    # only the literal im_end inside user content is text, so exactly 5 real <|im_end|> ids
    assert ids.count(tok.im_end_id) == 5 and ids.count(tok.im_start_id) == 5 and ids[0] == tok.eot_id
    # the mask covers exactly each assistant answer and its closing <|im_end|>, as contiguous runs
    runs, k = [], 0
    while k < len(ids):
        if mask[k]:
            j = k
            while j < len(ids) and mask[j]:
                j += 1
            runs.append(ids[k:j])
            k = j
        k += 1
    # an answer is encoded after one space: its first word gets the token it has inside a sentence
    assert runs == [tok.encode(" It is 4.") + [tok.im_end_id], tok.encode(" 6, said the αβγ.") + [tok.im_end_id]]


def test_render_system_prompt_handling(tok):
    ids, _ = C.render(tok, [{"role": "system", "content": "Be brief."}] + CHAT[:2])
    text = tok.decode(ids)
    assert text.count("<|im_start|>system") == 1 and "Be brief." in text and C.DEFAULT_SYSTEM_PROMPT not in text
    ids, _ = C.render(tok, CHAT[:2], system_prompt="Custom.")
    assert "<|im_start|>system\nCustom.<|im_end|>" in tok.decode(ids)
    ids, _ = C.render(tok, CHAT[:2], system_prompt=None)
    assert "system" not in tok.decode(ids)


def test_render_prompt_is_prefix_of_render(tok):
    prompt = C.render_prompt(tok, CHAT[:3])
    ids, mask = C.render(tok, CHAT)
    assert ids[:len(prompt)] == prompt
    assert mask[len(prompt) - 1] == 0 and mask[len(prompt)] == 1  # generation starts where learning does
    assert tok.decode(prompt).endswith("<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("messages, message", [
    ([], "non-empty list"),
    ([{"role": "bot", "content": "hi"}], "unknown role 'bot'"),
    ([{"role": "user", "content": ""}], "non-empty string"),
    ([{"role": "user", "content": "  \n"}], "non-empty string"),
    ([{"role": "user", "content": 5}], "non-empty string"),
    ([{"role": "user"}], "'role' and 'content'"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "only come first"),
    ([{"role": "user", "content": "a"}], "no assistant message"),
])
def test_render_rejects_bad_messages(tok, messages, message):
    with pytest.raises(ValueError, match=message):
        C.render(tok, messages)


def test_render_prompt_must_end_with_user(tok):
    with pytest.raises(ValueError, match="end with a user message"):
        C.render_prompt(tok, CHAT[:2])
