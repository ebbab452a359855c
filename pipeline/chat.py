"""
ChatML: a conversation as token ids and a loss mask (finetune.py learns from it), and the prompt a chat model
generates its answer from (sample.py, evaluation/benchmarks.py; export.py writes the same as a Jinja chat
template). The tokenizer only needs its special tokens <|endoftext|>, <|im_start|>, <|im_end|>.
"""

# docs/method.md, "Finetuning": the paper uses a fixed system prompt but does not print it; this one is ours.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer the user's request accurately and concisely."
ROLES = ("system", "user", "assistant")
ANSWER_SPACE = " "  # put before every assistant content (render's docstring says why)


def render(tok, messages, system_prompt=DEFAULT_SYSTEM_PROMPT):
    """A conversation as ids and a loss mask that is 1 exactly on assistant content and its <|im_end|>.

        <|endoftext|><|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{...}<|im_end|>\\n
        <|im_start|>assistant\\n {...}<|im_end|>\\n ...

    It starts with <|endoftext|> because pretraining documents do. An assistant's content is encoded
    after one space (ANSWER_SPACE): an answer continues the user's text the way a word continues a
    sentence in pretraining text, so its first word gets the token it has inside a sentence (" yes", not
    "yes", which the lab's text never holds); SentencePiece tokenizers such as Llama's put that space there
    themselves. Without a system message, one with system_prompt is put first (system_prompt=None: no
    system message)."""
    messages = _check_messages(messages, system_prompt)
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("messages: no assistant message, so nothing to learn (the loss mask would be all 0)")
    ids, mask = [tok.eot_id], [0]
    for m in messages:
        learn = int(m["role"] == "assistant")
        for part, learned in zip(_message_parts(tok, m), (0, learn, 0)):
            ids += part
            mask += [learned] * len(part)
    return ids, mask


def render_prompt(tok, messages, system_prompt=DEFAULT_SYSTEM_PROMPT):
    """The ids render() gives for these messages, followed by '<|im_start|>assistant\\n' to generate from."""
    messages = _check_messages(messages, system_prompt)
    if messages[-1]["role"] != "user":
        raise ValueError(f"messages[-1]: a prompt must end with a user message, not {messages[-1]['role']!r}")
    ids = [tok.eot_id]
    for m in messages:
        for part in _message_parts(tok, m):
            ids += part
    return ids + [tok.im_start_id] + tok.encode("assistant\n")


def _message_parts(tok, m):
    """(header, content + <|im_end|>, newline): role and content are encoded apart, so the header
    tokens never depend on the content (render_prompt's ids are always a prefix of render's)."""
    content = ANSWER_SPACE + m["content"] if m["role"] == "assistant" else m["content"]
    return [tok.im_start_id] + tok.encode(m["role"] + "\n"), tok.encode(content) + [tok.im_end_id], tok.encode("\n")


def _check_messages(messages, system_prompt):
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"messages[{k}]: expected a dict with 'role' and 'content', got {m!r:.80}")
        if m["role"] not in ROLES:
            raise ValueError(f"messages[{k}]: unknown role {m['role']!r} (expected one of {', '.join(ROLES)})")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise ValueError(f"messages[{k}]: content must be a non-empty string, got {m['content']!r:.80}")
        if m["role"] == "system" and k > 0:
            raise ValueError(f"messages[{k}]: a system message may only come first")
    if messages[0]["role"] != "system" and system_prompt:
        messages = [{"role": "system", "content": system_prompt}] + list(messages)
    return messages

