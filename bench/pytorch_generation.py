#!/usr/bin/env python3
"""PyTorch baseline for `cargo bench -p karma-plugin-candle-llm --bench generation`.

Runs SmolLM2-135M-Instruct with transformers on CPU from the same GGUF file (transformers
dequantizes it to f32, the weights the plugin's `gguf-f32` and `safetensors-f32` rows use), with
the same shapes: 200-token prompts, 32 greedy decode steps with a KV cache, batch 1 and 8,
best of 2 after a warm-up. Prefill projects only the last position to logits (`logits_to_keep=1`,
as `generate()` does and as the plugin does). Prints the same table.

For a developer machine, never CI: it needs a multi-GB PyTorch install.

    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch transformers accelerate gguf
    /tmp/torch/bin/python bench/pytorch_generation.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""

import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM

PROMPT_TOKENS = int(os.environ.get("KARMA_BENCH_PROMPT_TOKENS", "200"))  # as the Rust bench
DECODE_STEPS = 32


def measure(model, batch, repeats=2):
    prompts = torch.tensor(
        [[(i * 7919 + row * 104729) % 40000 + 100 for i in range(PROMPT_TOKENS)] for row in range(batch)]
    )
    best_prefill = best_decode = 0.0
    for _ in range(repeats):
        with torch.inference_mode():
            started = time.perf_counter()
            # Only the last position's logits, as `generate()` asks for them and as the plugin
            # computes them: the full [batch, 200, vocab] projection would add a quarter to
            # SmolLM2's prefill FLOPs.
            out = model(input_ids=prompts, use_cache=True, logits_to_keep=1)
            prefill = time.perf_counter() - started
            past = out.past_key_values
            next_tokens = out.logits[:, -1, :].argmax(-1, keepdim=True)
            started = time.perf_counter()
            for _ in range(DECODE_STEPS):
                out = model(input_ids=next_tokens, past_key_values=past, use_cache=True)
                past = out.past_key_values
                next_tokens = out.logits[:, -1, :].argmax(-1, keepdim=True)
            decode = time.perf_counter() - started
        best_prefill = max(best_prefill, batch * PROMPT_TOKENS / prefill)
        best_decode = max(best_decode, batch * DECODE_STEPS / decode)
    return best_prefill, best_decode


def main():
    default = os.path.join(os.path.dirname(__file__), "..", "target", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    path = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KARMA_SMOLLM2_GGUF", default))
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), torch_dtype=torch.float32
    ).eval()
    measure(model, 1, repeats=1)  # warm-up: the first SDPA call is pathologically slow
    threads = torch.get_num_threads()
    print(f"SmolLM2-135M-Instruct (torch {torch.__version__}), {PROMPT_TOKENS}-token prompts, "
          f"{DECODE_STEPS} decode steps, {threads} threads (best of 2)")
    print(f"{'weights':<17} {'batch':>5} {'prefill tok/s':>14} {'decode tok/s':>14}")
    decode_at = []
    for batch in (1, 8):
        prefill, decode = measure(model, batch)
        decode_at.append(decode)
        print(f"{'torch-f32':<17} {batch:>5} {prefill:>14.1f} {decode:>14.1f}")
    print(f"{'torch-f32':<17} batch 8 / batch 1 decode throughput: {decode_at[1] / decode_at[0]:.2f}x")


if __name__ == "__main__":
    main()
