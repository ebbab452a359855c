"""
Generate text from any stage's out_dir, streamed token by token.

    python sample.py --init_from=out/pretrain --prompt="The cat" --temperature=0.8 --top_k=50
    echo "What do cats eat?" | python sample.py --init_from=out/finetune
    python sample.py --init_from=out/finetune --chat          # one user turn per line of stdin

A finetuned checkpoint (stage "finetune") is prompted in ChatML, as evaluation prompts it
(chat.render_prompt, the default system prompt first) and stops at <|im_end|>; any other stage
continues <|endoftext|> + the text and stops at <|endoftext|>. The tokens come from the generation loop
the benchmarks use (evaluation/inference.py), whose KV cache makes each new token one position of work.
Text is printed as it arrives; a character whose UTF-8 bytes are split over several tokens is printed once
its last byte has come.

Sampling: logits / temperature, then the top_k most likely tokens, then the smallest set of those whose
probabilities reach top_p; temperature 0 is greedy (argmax) and ignores the rest. The seed fixes the draws
(on the model's device: the same seed gives the same text on the same device).
"""

import codecs
import sys
from dataclasses import dataclass

from evaluation import inference
from pipeline import chat, runtime


@dataclass
class SampleConfig:
    """Generate text from a stage's out_dir: continue a prompt, answer it (finetuned models), or chat."""
    init_from: str = "out/finetune"  # out_dir of a finished train.py, adapt.py or finetune.py run
    prompt: str = ""  # the text to continue (a finetuned model: the user's message); empty = read stdin
    chat: bool = False  # interactive chat: every line of stdin is a user turn; the conversation is kept
    chatml: str = "auto"  # ChatML prompts: auto (finetuned or spliced checkpoints), true or false
    max_new_tokens: int = 256  # most tokens per answer (fewer if the context is full)
    temperature: float = 0.8  # 0 = greedy
    top_k: int = 0  # sample among the k most likely tokens only; 0 = all
    top_p: float = 1.0  # sample among the most likely tokens whose probabilities add up to top_p; 1 = all
    seed: int = 1337  # seeds the sampling
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps


def print_stream(tok, tokens, out=sys.stdout):
    """Print the text of a stream of token ids as it comes (special tokens print nothing); returns the ids.
    An incremental UTF-8 decoder holds back the bytes of a character that is not complete yet."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    ids = []
    for token in tokens:
        ids.append(token)
        out.write(decoder.decode(tok.token_bytes(token)))
        out.flush()
    out.write(decoder.decode(b"", final=True))
    out.flush()
    return ids


def fit(prompt, block_size, max_new_tokens):
    # a prompt too long for the context keeps its end (as evaluation cuts it), leaving room for the answer
    room = max(1, block_size - max_new_tokens)
    return prompt[-room:]


def main(argv=None, stdin=sys.stdin, out=sys.stdout):
    cfg = runtime.parse_config(SampleConfig, "sample", argv)
    if cfg.temperature < 0 or cfg.top_k < 0 or not 0 < cfg.top_p <= 1 or cfg.max_new_tokens <= 0:
        runtime.fail("need temperature >= 0, top_k >= 0, 0 < top_p <= 1 and max_new_tokens > 0")
    if cfg.chatml not in ("auto", "true", "false"):
        runtime.fail(f"chatml must be auto, true or false, not '{cfg.chatml}'")
    model, tok, ckpt = runtime.load_stage(cfg.init_from, runtime.resolve_device(cfg.device))
    chatml = ckpt["stage"] in runtime.CHAT_STAGES if cfg.chatml == "auto" else cfg.chatml == "true"
    if cfg.chat and not chatml:
        runtime.fail(f"--chat needs a finetuned model ({cfg.init_from} is a {ckpt['stage']} run; "
                     "--chatml=true forces ChatML)")
    stops = {tok.eot_id, tok.im_start_id, tok.im_end_id} if chatml else {tok.eot_id}
    generator = inference.make_generator(model, cfg.seed)  # on the model's device, where the logits are
    block = model.config.block_size

    def answer(prompt_ids):
        prompt_ids = fit(prompt_ids, block, cfg.max_new_tokens)
        new = print_stream(tok, inference.stream(model, prompt_ids, cfg.max_new_tokens, cfg.temperature, stops,
                                                 generator, cfg.top_k, cfg.top_p), out)
        out.write("\n")
        return tok.decode([t for t in new if t not in stops])

    if not cfg.chat:
        text = cfg.prompt or stdin.read()
        if not text.strip():
            runtime.fail("nothing to answer: pass --prompt or write the prompt to stdin")
        messages = [{"role": "user", "content": text.strip()}]
        answer(chat.render_prompt(tok, messages) if chatml else [tok.eot_id] + tok.encode(text))
        return
    messages = []
    interactive = stdin.isatty()
    while True:
        if interactive:
            out.write("> ")
            out.flush()
        line = stdin.readline()
        if not line:
            break
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line.strip()})
        reply = answer(chat.render_prompt(tok, messages))
        if reply.strip():  # an empty reply cannot be rendered (chat.render refuses it): the turn is left out
            messages.append({"role": "assistant", "content": reply.strip()})


if __name__ == "__main__":
    main()
