using CptLab.Model;
using static TorchSharp.torch;

namespace CptLab.Model.Tests;

/// <summary>Which coordinates of a head RoPE rotates together.</summary>
enum RopeLayout
{
    /// <summary>Hugging Face's rotate_half: pairs (x_d, x_{d+hd/2}). What a Hugging Face checkpoint expects.</summary>
    HalfSplit,
    /// <summary>GPT-J and Meta's original code: adjacent pairs (x_{2d}, x_{2d+1}). Wrong for Hugging Face weights.</summary>
    Interleaved,
}

/// <summary>
/// An independent Llama forward pass in plain C# loops and double precision, written from the published
/// equations, for checking the TorchSharp model. Weights are copied out of the model by Hugging Face name.
/// </summary>
sealed class ReferenceLlama
{
    readonly LlamaConfig _c;
    readonly RopeLayout _layout;
    readonly Dictionary<string, double[]> _w = new();

    public ReferenceLlama(LlamaForCausalLM model, RopeLayout layout = RopeLayout.HalfSplit)
    {
        _c = model.Config;
        _layout = layout;
        foreach (var (name, p) in model.named_parameters())
        {
            using var f = p.detach().to(ScalarType.Float64).contiguous();
            _w[name] = f.data<double>().ToArray();
        }
    }

    /// <summary>logits[t][v] for the token sequence (causal, positions 0 … T−1).</summary>
    public double[][] Logits(long[] tokens)
    {
        int T = tokens.Length, C = _c.HiddenSize;
        var x = new double[T][];
        for (int t = 0; t < T; t++) x[t] = Row(_w["model.embed_tokens.weight"], (int)tokens[t], C);

        for (int l = 0; l < _c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var h = x.Select(r => RmsNorm(r, _w[p + "input_layernorm.weight"])).ToArray();
            var attn = Attention(h, p + "self_attn.");
            for (int t = 0; t < T; t++) x[t] = Add(x[t], attn[t]);
            var h2 = x.Select(r => RmsNorm(r, _w[p + "post_attention_layernorm.weight"])).ToArray();
            for (int t = 0; t < T; t++)
            {
                var gate = MatVec(_w[p + "mlp.gate_proj.weight"], h2[t], _c.IntermediateSize);
                var up = MatVec(_w[p + "mlp.up_proj.weight"], h2[t], _c.IntermediateSize);
                var act = new double[gate.Length];
                for (int i = 0; i < act.Length; i++) act[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
                x[t] = Add(x[t], MatVec(_w[p + "mlp.down_proj.weight"], act, C));
            }
        }
        var head = _c.TieWordEmbeddings ? _w["model.embed_tokens.weight"] : _w["lm_head.weight"];
        return x.Select(r => MatVec(head, RmsNorm(r, _w["model.norm.weight"]), _c.VocabSize)).ToArray();
    }

    double[][] Attention(double[][] h, string p)
    {
        int T = h.Length, nh = _c.NumAttentionHeads, nkv = _c.NumKeyValueHeads, hd = _c.HeadDim;
        var q = h.Select(r => MatVec(_w[p + "q_proj.weight"], r, nh * hd)).ToArray();
        var k = h.Select(r => MatVec(_w[p + "k_proj.weight"], r, nkv * hd)).ToArray();
        var v = h.Select(r => MatVec(_w[p + "v_proj.weight"], r, nkv * hd)).ToArray();
        var inv = InverseFrequencies();
        for (int t = 0; t < T; t++)
        {
            for (int head = 0; head < nh; head++) Rotate(q[t], head * hd, t, inv, _layout);
            for (int head = 0; head < nkv; head++) Rotate(k[t], head * hd, t, inv, _layout);
        }
        var output = new double[T][];
        for (int t = 0; t < T; t++)
        {
            var o = new double[nh * hd];
            for (int head = 0; head < nh; head++)
            {
                int kvHead = head / (nh / nkv); // consecutive query heads share a key/value head
                var scores = new double[t + 1];
                for (int s = 0; s <= t; s++)
                {
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += q[t][head * hd + d] * k[s][kvHead * hd + d];
                    scores[s] = dot / Math.Sqrt(hd);
                }
                double max = scores.Max(), sum = 0;
                for (int s = 0; s <= t; s++) { scores[s] = Math.Exp(scores[s] - max); sum += scores[s]; }
                for (int s = 0; s <= t; s++)
                    for (int d = 0; d < hd; d++) o[head * hd + d] += scores[s] / sum * v[s][kvHead * hd + d];
            }
            output[t] = MatVec(_w[p + "o_proj.weight"], o, _c.HiddenSize);
        }
        return output;
    }

    // Llama-3.1's frequency scaling, from the paper's reference code.
    double[] InverseFrequencies()
    {
        int hd = _c.HeadDim;
        var rs = _c.RopeScaling!;
        var result = new double[hd / 2];
        for (int i = 0; i < hd / 2; i++)
        {
            double freq = Math.Pow(_c.RopeTheta, -(2.0 * i) / hd);
            double wavelength = 2 * Math.PI / freq;
            double lowWave = rs.OriginalMaxPositionEmbeddings / rs.LowFreqFactor;
            double highWave = rs.OriginalMaxPositionEmbeddings / rs.HighFreqFactor;
            if (wavelength < highWave) result[i] = freq;
            else if (wavelength > lowWave) result[i] = freq / rs.Factor;
            else
            {
                double smooth = (rs.OriginalMaxPositionEmbeddings / wavelength - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor);
                result[i] = (1 - smooth) * freq / rs.Factor + smooth * freq;
            }
        }
        return result;
    }

    // Pair d rotates by angle position·inv[d]: coordinates (d, d + hd/2) in the half-split layout, (2d, 2d + 1) interleaved.
    static void Rotate(double[] vec, int offset, int position, double[] inv, RopeLayout layout)
    {
        int half = inv.Length;
        for (int d = 0; d < half; d++)
        {
            var (i, j) = layout == RopeLayout.HalfSplit ? (offset + d, offset + d + half) : (offset + 2 * d, offset + 2 * d + 1);
            double angle = position * inv[d], cos = Math.Cos(angle), sin = Math.Sin(angle);
            double a = vec[i], b = vec[j];
            vec[i] = a * cos - b * sin;
            vec[j] = b * cos + a * sin;
        }
    }

    double[] RmsNorm(double[] x, double[] weight)
    {
        double ms = x.Sum(v => v * v) / x.Length;
        double scale = 1 / Math.Sqrt(ms + _c.RmsNormEps);
        return x.Select((v, i) => v * scale * weight[i]).ToArray();
    }

    static double[] MatVec(double[] w, double[] x, int rows)
    {
        int cols = x.Length;
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
            y[r] = s;
        }
        return y;
    }

    static double[] Row(double[] w, int row, int cols) => w.AsSpan(row * cols, cols).ToArray();
    static double[] Add(double[] a, double[] b) => a.Select((v, i) => v + b[i]).ToArray();
}
