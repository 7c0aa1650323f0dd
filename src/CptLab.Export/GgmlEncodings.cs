using System.Buffers.Binary;

namespace CptLab.Export;

/// <summary>
/// Element encodings of the non-f32 types, as ggml defines them: IEEE binary16, bfloat16 (upper half of the f32,
/// rounded to nearest even; NaN kept quiet) and Q8_0.
/// </summary>
public static class Q8_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 2 + BlockSize; // f16 scale d, then 32 int8

    /// <summary>
    /// Quantizes rows of 32-value blocks as ggml's reference quantizer does: d = max|x| / 127 (in f32, stored as f16),
    /// q = round(x / d) with halves away from zero (C's roundf), computed with the f32 reciprocal 1/d.
    /// </summary>
    public static void Encode(ReadOnlySpan<float> x, Span<byte> output)
    {
        if (x.Length % BlockSize != 0) throw new ArgumentException($"{x.Length} values is not a whole number of Q8_0 blocks");
        for (int b = 0; b < x.Length / BlockSize; b++)
        {
            var block = x.Slice(b * BlockSize, BlockSize);
            var o = output.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            foreach (var v in block) amax = Math.Max(amax, Math.Abs(v));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
            for (int j = 0; j < BlockSize; j++)
                o[2 + j] = unchecked((byte)(sbyte)MathF.Round(block[j] * id, MidpointRounding.AwayFromZero));
        }
    }
}

public static class HalfFloats
{
    /// <summary>f32 → bf16 bits: round to nearest even; a NaN stays a (quiet) NaN.</summary>
    public static ushort ToBFloat16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    public static void EncodeBFloat16(ReadOnlySpan<float> x, Span<byte> output)
    {
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(output[(2 * i)..], ToBFloat16(x[i]));
    }

    /// <summary>f32 → IEEE binary16, round to nearest even (.NET's conversion, as numpy's astype(float16)).</summary>
    public static void EncodeFloat16(ReadOnlySpan<float> x, Span<byte> output)
    {
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(output[(2 * i)..], (Half)x[i]);
    }
}
