#!/usr/bin/env python3
"""Cross-check of a CptLab checkpoint against an independent PyTorch implementation.

Reads model.safetensors and config.json of a Hugging Face-layout Llama folder with nothing but json + torch (the
safetensors header parsed by hand), builds the Llama of bench/train_torch.py under the Hugging Face tensor names
(llama3 rope scaling included), and prints the greedy continuation of the given prompt ids, so it can be
compared with `cptlab generate --model DIR --prompt-ids … --max-new-tokens N` (greedy by default).
Needs Debian's python3-torch (not installed by the project's set-up: this is a manual check, see docs).
Usage: /usr/bin/python3 tools/check_with_pytorch.py MODEL_DIR 1,2,3 16
"""
import json, math, struct, sys
import torch

model_dir, prompt, steps = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3])
c = json.load(open(f"{model_dir}/config.json"))
DT = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
raw = open(f"{model_dir}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8 : 8 + n])
W = {}
for name, e in header.items():
    if name == "__metadata__":
        continue
    b, end = e["data_offsets"]
    t = torch.frombuffer(bytearray(raw[8 + n + b : 8 + n + end]), dtype=DT[e["dtype"]]).reshape(e["shape"])
    W[name] = t.double()

H, L, NH, NKV = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"]
HD = c.get("head_dim") or H // NH
inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, HD, 2, dtype=torch.float64) / HD))
rs = c.get("rope_scaling")
if rs and rs.get("rope_type", rs.get("type")) == "llama3":
    old, lo, hi, f = rs["original_max_position_embeddings"], rs["low_freq_factor"], rs["high_freq_factor"], rs["factor"]
    wl = 2 * math.pi / inv
    smooth = (old / wl - lo) / (hi - lo)
    scaled = torch.where(wl > old / lo, inv / f, inv)
    mid = (wl >= old / hi) & (wl <= old / lo)
    inv = torch.where(mid, (1 - smooth) * inv / f + smooth * inv, scaled)


def norm(x, w):
    return w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + c["rms_norm_eps"])


def rot(x, cos, sin):
    x1, x2 = x[..., : HD // 2], x[..., HD // 2 :]
    return x * cos + torch.cat((-x2, x1), -1) * sin


def forward(ids):
    T = len(ids)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    emb = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat((emb, emb), -1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = norm(x, W[p + "input_layernorm.weight"])
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(T, NH, HD).transpose(0, 1)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(T, NKV, HD).transpose(0, 1)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(T, NKV, HD).transpose(0, 1)
        q, k = rot(q, cos, sin), rot(k, cos, sin)
        k, v = k.repeat_interleave(NH // NKV, 0), v.repeat_interleave(NH // NKV, 0)
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(HD)).masked_fill(mask, float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(0, 1).reshape(T, NH * HD) @ W[p + "self_attn.o_proj.weight"].T
        h = norm(x, W[p + "post_attention_layernorm.weight"])
        g = h @ W[p + "mlp.gate_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * (h @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"]) if not c.get("tie_word_embeddings") else W["model.embed_tokens.weight"]
    return norm(x, W["model.norm.weight"]) @ head.T


ids = list(prompt)
for _ in range(steps):
    ids.append(int(forward(ids)[-1].argmax()))
print(",".join(str(i) for i in ids[len(prompt) :]))
