#!/usr/bin/env python3
"""The reference for bench/train: transformers + PEFT LoRA training speed at the same shapes.

LoRA r=16 (alpha 32, dropout 0.05) on all seven projections of a randomly initialised model of
Qwen2.5-0.5B / 1.5B / 7B shape, bf16, sdpa attention, AdamW (torch, fused), random tokens
[batch, seq], loss on every position. Reports tokens/s over the timed steps (after warm-up) and
torch.cuda.max_memory_allocated. Run it in the same device session as bench/train, e.g.

  python3 bench/train/peft_reference.py --shapes qwen2.5-0.5b,qwen2.5-1.5b --batch 8 --seq 1024 --steps 20 --out $OUT/peft.json

Needs torch (CUDA), transformers and peft (the GPU machine has torch 2.11, transformers 5.17, PEFT 0.21).
"""
import argparse
import json
import time

import peft
import torch
import transformers

SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def run(name, batch, seq, steps, rank):
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(**SHAPES[name], rope_theta=1e6, rms_norm_eps=1e-6, max_position_embeddings=32768)
    cfg._attn_implementation = "sdpa"
    model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16).cuda()
    model = peft.get_peft_model(model, peft.LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05,
                                                       target_modules=TARGETS, task_type="CAUSAL_LM"))
    for p in model.parameters():  # LoRA weights in f32, as Foundry keeps them
        if p.requires_grad:
            p.data = p.data.float()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    model.train()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    secs = time.perf_counter() - t
    r = dict(shape=name, impl=f"transformers {transformers.__version__} + peft {peft.__version__}, torch {torch.__version__}",
             device=torch.cuda.get_device_name(), batch=batch, seq=seq, steps=steps, rank=rank,
             tokens_per_second=batch * seq * steps / secs, peak_memory_gib=torch.cuda.max_memory_allocated() / 2**30,
             last_loss=float(loss), date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    del model, opt
    torch.cuda.empty_cache()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="qwen2.5-0.5b,qwen2.5-1.5b")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    results = []
    for name in a.shapes.split(","):
        r = run(name, a.batch, a.seq, a.steps, a.rank)
        print(f"{name:14s} batch {a.batch} seq {a.seq} r={a.rank}: {r['tokens_per_second']:8.0f} tokens/s, "
              f"peak {r['peak_memory_gib']:.1f} GiB ({r['impl']})")
        results.append(r)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
