"""
Export any stage's out_dir as a Hugging Face folder that `transformers` loads as LlamaForCausalLM.

    python export.py --init_from=out/finetune --out_dir=out/hf_finetune [--dtype=bfloat16]
    python -c "from transformers import AutoModelForCausalLM, AutoTokenizer; \\
               m = AutoModelForCausalLM.from_pretrained('out/hf_finetune', local_files_only=True)"

The decoder is Llama's architecture one to one, weight by weight:
    wte                 model.embed_tokens          blocks.i.attn.wq/wk/wv/wo   self_attn.q/k/v/o_proj
    blocks.i.attn_norm  input_layernorm             blocks.i.mlp.gate/up/down   mlp.gate/up/down_proj
    blocks.i.mlp_norm   post_attention_layernorm    norm, lm_head               model.norm, lm_head
RoPE rotates (first half, second half) channel pairs as Llama's rotate_half does, with the same
frequencies; attention scales by 1/sqrt(head_dim); RMSNorm, SwiGLU (silu), grouped-query heads, no
biases, untied embeddings. The padding rows of wte and lm_head (to a multiple of 64) are sliced off:
the exported vocabulary is the real one. The weights are float32 as trained, or with --dtype=bfloat16
rounded to bfloat16 (half the size; a server's "auto" dtype then loads bfloat16, where some read
float32 as float16).

The tokenizer becomes a `tokenizers` byte-level BPE (tokenizer.json) that gives exactly tiktoken's ids:
the same split regex, the vocabulary through GPT-2's byte -> character map, and for every token one
merge: the last merge byte-by-byte BPE makes of the token's own bytes. That one merge is enough because
every token of our vocabularies is reachable (tokenizer.py): then every merge tiktoken makes inside a
piece is such a last merge, and merging the lowest-ranked of them (leftmost on ties, as both libraries
do) is what tiktoken does. A vocabulary with an unreachable token is refused, never approximated.
Special tokens keep their ids (in the middle of an extended vocabulary). Every tokenizer call prepends
<|endoftext|> (BOS), as our stages put it before every document and every prompt; pass
add_special_tokens=False for the bare ids of tokenizer.encode (and for a rendered chat, which starts with
its own: docs/protocol.md lists the calls that give one). Unlike tokenizer.encode, a special
token's spelling inside the text becomes that special token (Hugging Face's rule; chat templates need it;
split_special_tokens=True reads it as text, as tokenizer.encode does).

Every special token is registered as special (tokenizer.json and tokenizer_config.json), so
decode(skip_special_tokens=True) drops all four. A finetuned model gets a ChatML chat_template that
renders chat.render_prompt's ids (the default system prompt included; an assistant's content
stripped, as sample.py feeds a reply back) and stops generation at <|im_end|> (or <|endoftext|>,
<|im_start|>); other models stop at <|endoftext|>.
"""

import json
import os
import shutil
from dataclasses import dataclass

import torch

import tokenizer
from pipeline import chat, runtime


@dataclass
class ExportConfig:
    """Export a stage's out_dir (train.py, adapt.py or finetune.py) as a Hugging Face LlamaForCausalLM folder."""
    init_from: str = "out/finetune"  # out_dir of a finished train.py, adapt.py or finetune.py run
    out_dir: str = "out/hf"  # the folder to write: config.json, model.safetensors, tokenizer files
    dtype: str = "float32"  # float32 (the weights as trained, exactly) or bfloat16 (half the folder, to serve on GPUs)
    overwrite: bool = False  # replace an existing export folder


DTYPES = ("float32", "bfloat16")  # float16 is left out: a bf16-trained weight can overflow float16's range


# ---- the model --------------------------------------------------------------------------------------

def llama_config(config, tok, chat, dtype="float32"):
    """The config.json of a LlamaForCausalLM with our GPTConfig's shape (a plain dict, written as JSON)."""
    head_dim = config.n_embd // config.n_head
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": tok.n_vocab, "hidden_size": config.n_embd, "intermediate_size": config.mlp_hidden,
        "num_hidden_layers": config.n_layer, "num_attention_heads": config.n_head,
        "num_key_value_heads": config.n_kv_head, "head_dim": head_dim, "hidden_act": "silu",
        "max_position_embeddings": config.block_size, "rms_norm_eps": config.norm_eps,
        # transformers 5 reads rope_parameters, 4.x reads rope_theta: both say the same
        "rope_theta": config.rope_theta, "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
        "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
        "torch_dtype": dtype, "dtype": dtype,  # the weights' dtype, under transformers 4.x's name and 5's
        "bos_token_id": tok.eot_id, "eos_token_id": tok.im_end_id if chat else tok.eot_id, "pad_token_id": tok.pad_id,
    }


def llama_state_dict(model, dtype="float32"):
    """Our weights under Llama's names, the vocabulary's padding rows dropped, as contiguous tensors of dtype."""
    n = model.config.vocab_size
    names = {"attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm",
             "attn.wq": "self_attn.q_proj", "attn.wk": "self_attn.k_proj", "attn.wv": "self_attn.v_proj",
             "attn.wo": "self_attn.o_proj", "mlp.gate": "mlp.gate_proj", "mlp.up": "mlp.up_proj",
             "mlp.down": "mlp.down_proj"}
    out = {"model.embed_tokens.weight": model.wte.weight[:n], "lm_head.weight": model.lm_head.weight[:n],
           "model.norm.weight": model.norm.weight}
    for i, block in enumerate(model.blocks):
        for name, p in block.named_parameters():
            ours = name.removesuffix(".weight")
            out[f"model.layers.{i}.{names[ours]}.weight"] = p
    if len(out) != len(list(model.parameters())):
        raise RuntimeError(f"llama_state_dict: {len(out)} tensors for {len(list(model.parameters()))} parameters")
    return {k: v.detach().to("cpu", getattr(torch, dtype)).contiguous().clone() for k, v in out.items()}


# ---- the tokenizer ----------------------------------------------------------------------------------

def byte_to_char():
    """GPT-2's map of the 256 bytes to printable characters: a byte-level BPE vocabulary is spelled in them.
    Printable Latin-1 bytes stand for themselves; the others take the characters from U+0100 on."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: chr(b) for b in kept}, 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def last_merges(tok):
    """For every mergeable token of 2+ bytes, in id (= rank) order: the pair of ids (left, right) that
    byte-by-byte BPE merges last when it encodes the token's own bytes. ValueError if some token is not
    what that BPE makes of its bytes (unreachable: no merge list can reproduce tiktoken on it)."""
    ranks, tok_bytes = tok.mergeable_ranks, [tok.token_bytes(i) for i in range(tok.n_vocab)]
    merges = []
    for token_id in sorted(ranks.values()):
        data = tok_bytes[token_id]
        if len(data) == 1:
            continue
        parts, last = [ranks[bytes([c])] for c in data], None
        while len(parts) > 1:  # tiktoken's loop: merge the lowest-ranked adjacent pair, leftmost on ties
            found = [(ranks[m], i) for i, (a, b) in enumerate(zip(parts, parts[1:]))
                     if (m := tok_bytes[a] + tok_bytes[b]) in ranks]
            if not found:
                break
            r, i = min(found)
            last = (parts[i], parts[i + 1])
            parts[i:i + 2] = [r]
        if parts != [token_id]:
            raise ValueError(f"token {token_id} ({data!r}) is unreachable: BPE on its own bytes gives {parts}, so no "
                             f"Hugging Face merge list can encode exactly like tiktoken; re-train or re-extend the "
                             f"vocabulary with tokenizer.py")
        merges.append(last)
    return merges


def hf_tokenizer(tok):
    """A `tokenizers.Tokenizer` that encodes and decodes exactly like tok (see the module docstring)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    chars = byte_to_char()
    spell = lambda i: "".join(chars[b] for b in tok.token_bytes(i))  # noqa: E731
    vocab = {spell(i): i for i in tok.mergeable_ranks.values()}
    clash = [name for name in tok.special_tokens if name in vocab]
    if clash:
        raise ValueError(f"the special token {clash[0]} is also spelled by the mergeable token {vocab[clash[0]]}")
    vocab.update(tok.special_tokens)  # in the model's vocabulary too, so that they keep their ids
    merges = [(spell(a), spell(b)) for a, b in last_merges(tok)]
    hf = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=False))
    hf.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tokenizer.SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in tok.special_tokens])
    eot = tokenizer.SPECIAL_TOKENS[0]
    hf.post_processor = processors.TemplateProcessing(single=f"{eot} $A", pair=f"{eot} $A {eot} $B",
                                                      special_tokens=[(eot, tok.eot_id)])
    wrong = [(name, i, hf.token_to_id(name)) for name, i in tok.special_tokens.items() if hf.token_to_id(name) != i]
    if wrong:
        raise RuntimeError(f"special tokens moved in the Hugging Face tokenizer (name, ours, theirs): {wrong}")
    return hf


def chat_template():
    """ChatML as chat.render_prompt writes it: <|endoftext|>, the default system prompt unless the
    conversation starts with its own, every message as <|im_start|>role\\ncontent<|im_end|>\\n, with one space
    before an assistant's content (chat.ANSWER_SPACE).

    An assistant's content is stripped first, as sample.py strips a reply before it goes back into the
    conversation: a decoded reply starts with the answer space already, and feeding it back must not
    add a second one per turn. Other contents go in as they are. render_prompt encodes each message's
    content apart from its header; the template's text is encoded in one piece, which gives the same ids
    unless a user or system content starts with whitespace holding a line break (the split regex would
    join it to the header's newline). The template refuses such content, and empty content."""
    system = json.dumps(chat.DEFAULT_SYSTEM_PROMPT)
    space = json.dumps(chat.ANSWER_SPACE)
    return (
        "{{- '<|endoftext|>' -}}\n"
        "{%- if messages[0]['role'] != 'system' -%}"
        "{{- '<|im_start|>system\\n' + " + system + " + '<|im_end|>\\n' -}}{%- endif -%}\n"
        "{%- for message in messages -%}\n"
        "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
        "{{- raise_exception('ChatML roles are system, user and assistant, not ' + message['role']) -}}{%- endif -%}\n"
        "{%- if message['role'] == 'system' and not loop.first -%}"
        "{{- raise_exception('a system message may only come first') -}}{%- endif -%}\n"
        "{%- set content = message['content'] -%}\n"
        "{%- if content is not string or not content|trim -%}"
        "{{- raise_exception('a message needs a non-empty text content (chat.render refuses an empty one)') -}}"
        "{%- endif -%}\n"
        "{%- set lead = content[:content|length - content.lstrip()|length] -%}\n"
        "{%- if message['role'] != 'assistant' and ('\\n' in lead or '\\r' in lead) -%}"
        "{{- raise_exception('a message may not start with a line break (it would not encode like chat.render)') -}}"
        "{%- endif -%}\n"
        "{%- if message['role'] == 'assistant' -%}{%- set content = " + space + " + content|trim -%}{%- endif -%}\n"
        "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' -}}\n"
        "{%- endfor -%}\n"
        "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n"
    )


def tokenizer_config(tok, chat, block_size):
    """tokenizer_config.json: every special token registered as special (bos, eos and pad by role, all of
    them in additional_special_tokens and added_tokens_decoder), so that transformers counts
    <|im_start|> among all_special_ids and decode(skip_special_tokens=True) drops it like the others."""
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",  # tokenizer.json as it is (a Llama class would rebuild it)
        "bos_token": "<|endoftext|>", "eos_token": "<|im_end|>" if chat else "<|endoftext|>", "pad_token": "<|pad|>",
        "additional_special_tokens": list(tok.special_tokens),
        "added_tokens_decoder": {str(i): {"content": name, "special": True, "normalized": False, "lstrip": False,
                                          "rstrip": False, "single_word": False}
                                 for name, i in tok.special_tokens.items()},
        "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_max_length": block_size,
    }
    if chat:
        config["chat_template"] = chat_template()
    return config


# ---- the folder -------------------------------------------------------------------------------------

def export(init_from, out_dir, overwrite=False, dtype="float32"):
    """Write the Hugging Face folder of a finished stage; returns its path."""
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        runtime.fail(f"--dtype={dtype!r} is not one of {', '.join(DTYPES)}")
    if os.path.exists(out_dir) and not overwrite:
        runtime.fail(f"{out_dir} already exists; pass --overwrite to replace it")
    if os.path.abspath(out_dir) == os.path.abspath(init_from):
        runtime.fail("--out_dir must differ from --init_from (the export would delete the run)")
    model, tok, ckpt = runtime.load_stage(init_from)
    chat = ckpt["stage"] in runtime.CHAT_STAGES
    try:
        hf_tok = hf_tokenizer(tok)
    except ValueError as e:
        runtime.fail(f"{init_from}/tokenizer.tiktoken: {e}")
    tmp = out_dir.rstrip("/") + ".tmp"  # written whole, then renamed: never half an export
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    runtime.write_json(os.path.join(tmp, "config.json"), llama_config(model.config, tok, chat, dtype))
    stops = [tok.im_end_id, tok.eot_id, tok.im_start_id] if chat else [tok.eot_id]  # as sample.py and evaluate.py stop
    runtime.write_json(os.path.join(tmp, "generation_config.json"),
                      {"bos_token_id": tok.eot_id, "eos_token_id": stops, "pad_token_id": tok.pad_id})
    save_file(llama_state_dict(model, dtype), os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    hf_tok.save(os.path.join(tmp, "tokenizer.json"))
    runtime.write_json(os.path.join(tmp, "tokenizer_config.json"), tokenizer_config(tok, chat, model.config.block_size))
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def main(argv=None):
    cfg = runtime.parse_config(ExportConfig, "export", argv)
    out = export(cfg.init_from, cfg.out_dir, cfg.overwrite, cfg.dtype)
    print(f"wrote {out}: LlamaForCausalLM ({cfg.dtype}) and its tokenizer from {cfg.init_from}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
