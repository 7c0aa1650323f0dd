using TorchSharp;

namespace CptLab.Model;

/// <summary>LibTorch's scalar types for the dtype names of <see cref="StoredDtypes"/>.</summary>
public static class DtypeNames
{
    public static torch.ScalarType? Parse(string name) => StoredDtypes.Normalise(name) switch
    {
        "float32" => torch.ScalarType.Float32,
        "bfloat16" => torch.ScalarType.BFloat16,
        "float16" => torch.ScalarType.Float16,
        _ => null,
    };

    public static string HfName(torch.ScalarType t) => t switch
    {
        torch.ScalarType.Float32 => "float32",
        torch.ScalarType.BFloat16 => "bfloat16",
        torch.ScalarType.Float16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a checkpoint dtype"),
    };

    /// <summary>Bytes of one element.</summary>
    public static int Bytes(torch.ScalarType t) => t switch
    {
        torch.ScalarType.Float32 => 4,
        torch.ScalarType.BFloat16 or torch.ScalarType.Float16 => 2,
        torch.ScalarType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "not a compute dtype"),
    };
}
