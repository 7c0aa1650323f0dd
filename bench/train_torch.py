#!/usr/bin/env python3
"""PyTorch eager training of the same Llama configuration as CptLab's trainer, for bench/train-bench.sh.

Reads a Hugging Face config.json (written by `cptlab model init`), trains on random tokens with AdamW at the
given batch, sequence length, precision and thread count, and prints one JSON line: tokens/s and MFU, where
MFU uses the same FLOPs-per-token formula as CptLab (6·N_matmul + 12·L·heads·head_dim·T) and a peak matmul
rate measured in this process. bf16 is the usual PyTorch recipe: float32 weights, autocast to bfloat16.
Written for Debian 12's python3-torch (1.13, which has no scaled_dot_product_attention).
"""
import argparse, json, math, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--dtype", default="float32")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--seq", type=int, default=256)
p.add_argument("--steps", type=int, default=12)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
c = json.load(open(a.config))
H, I, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
NH, NKV = c["num_attention_heads"], c["num_key_value_heads"]
HD = c.get("head_dim") or H // NH
EPS, THETA, TIED = c["rms_norm_eps"], c["rope_theta"], c.get("tie_word_embeddings", False)


class RMSNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(H))

    def forward(self, x):
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)


def rotate(x, cos, sin):
    x1, x2 = x[..., : HD // 2], x[..., HD // 2 :]
    return x * cos + torch.cat((-x2, x1), -1) * sin


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(), RMSNorm()
        self.q = nn.Linear(H, NH * HD, bias=False)
        self.k = nn.Linear(H, NKV * HD, bias=False)
        self.v = nn.Linear(H, NKV * HD, bias=False)
        self.o = nn.Linear(NH * HD, H, bias=False)
        self.gate = nn.Linear(H, I, bias=False)
        self.up = nn.Linear(H, I, bias=False)
        self.down = nn.Linear(I, H, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q(h).view(B, T, NH, HD).transpose(1, 2)
        k = self.k(h).view(B, T, NKV, HD).transpose(1, 2)
        v = self.v(h).view(B, T, NKV, HD).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HD)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, T, NH * HD))
        h = self.post_attention_layernorm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(V, H)
        self.layers = nn.ModuleList(Block() for _ in range(L))
        self.norm = RMSNorm()
        self.head = None if TIED else nn.Linear(H, V, bias=False)

    def forward(self, ids):
        T = ids.shape[1]
        inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.float64) / HD))
        freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv)
        emb = torch.cat((freqs, freqs), -1)
        x = self.embed(ids)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        return F.linear(x, self.embed.weight) if self.head is None else self.head(x)


model = Llama()
for n, prm in model.named_parameters():
    if prm.dim() == 2:
        nn.init.normal_(prm, std=0.02)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
bf16 = a.dtype == "bfloat16"
times = []
for step in range(a.warmup + a.steps):
    ids = torch.randint(0, V, (a.batch, a.seq + 1))
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(ids[:, :-1])
    loss = F.cross_entropy(logits.float().reshape(-1, V), ids[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - t0)

step_s = statistics.median(times[a.warmup :])
tps = a.batch * a.seq / step_s
matmul_params = L * (H * NH * HD + 2 * H * NKV * HD + NH * HD * H + 3 * H * I) + V * H
flops_per_token = 3 * (2 * matmul_params + 4 * L * NH * HD * a.seq)
dt = torch.bfloat16 if bf16 else torch.float32
m1, m2 = torch.randn(1024, 1024).to(dt), torch.randn(1024, 1024).to(dt)
for _ in range(2):
    m1 @ m2
best = min((lambda t0: (m1 @ m2, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(8))
peak = 2 * 1024**3 / best
print(json.dumps({"impl": "pytorch " + torch.__version__, "dtype": a.dtype, "batch": a.batch, "seq": a.seq, "threads": a.threads,
                  "tokens_per_s": round(tps, 1), "mfu": round(tps * flops_per_token / peak, 4), "peak_gflops": round(peak / 1e9, 1)}))
