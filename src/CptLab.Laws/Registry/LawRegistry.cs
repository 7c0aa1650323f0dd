using CptLab.Core;

namespace CptLab.Laws.Registry;

/// <summary>
/// Every law family the project knows, by name: the table laws (<see cref="BuiltInLaws"/>, fitted by
/// <see cref="LawTableFitter"/>) and the sweep fit's families (descriptive entries, fitted by
/// <see cref="LawFitter"/>). <c>cptlab laws list</c> prints <see cref="All"/>.
/// </summary>
public static class LawRegistry
{
    public static IReadOnlyList<LawDefinition> All => BuiltInLaws.All;

    /// <summary>The entry named <paramref name="name"/> (case-insensitive), or null.</summary>
    public static LawDefinition? Find(string name) =>
        All.FirstOrDefault(l => string.Equals(l.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The entry named <paramref name="name"/>; an unknown name is a user error that lists the known ones.</summary>
    public static LawDefinition Get(string name) =>
        Find(name) ?? throw new CptLabException($"unknown law '{name}'; known laws: {string.Join(", ", All.Select(l => l.Name))} (`cptlab laws list` shows their formulas)");

    /// <summary>
    /// The sweep fit's family named <paramref name="name"/> (response_surface_linear, response_surface_quadratic,
    /// mixing_law), as the <see cref="LawFamily"/> object LawFitter fits: the one place the sweep fit looks its
    /// families up by name.
    /// </summary>
    internal static LawFamily SweepFamily(string name)
    {
        foreach (var kind in Enum.GetValues<LawKind>())
            if (string.Equals(LawFamily.Name(kind), name, StringComparison.OrdinalIgnoreCase))
                return LawFamily.For(kind);
        throw new CptLabException($"'{name}' is not a sweep law family; the sweep fit's families are: {string.Join(", ", Enum.GetValues<LawKind>().Select(LawFamily.Name))}");
    }

    /// <summary>The registry name of a sweep family (as fit.json and `cptlab laws list` write it).</summary>
    public static string SweepFamilyName(LawKind kind) => LawFamily.Name(kind);

    /// <summary>Every sweep family's registry name.</summary>
    public static IReadOnlyList<string> SweepFamilyNames => [.. Enum.GetValues<LawKind>().Select(LawFamily.Name)];

    /// <summary>The sweep family's kind by name (for options that list families), or null when <paramref name="name"/> is not one.</summary>
    public static LawKind? SweepKind(string name) =>
        Enum.GetValues<LawKind>().Select(k => (LawKind?)k).FirstOrDefault(k => string.Equals(LawFamily.Name(k!.Value), name, StringComparison.OrdinalIgnoreCase));
}
