using System.Globalization;
using System.Reflection;

namespace MLNet.DeepRec.Benchmarks;

/// <summary>
/// Option overrides for tuning runs, parsed from "Row:Option=Value;Property=Value|Row2:…". Values are parsed by the
/// option's type: numbers (invariant culture), booleans, enum names, and int arrays written "256,256" (empty for none).
/// An unknown row is ignored only if the row does not run; an unknown property or an unparsable value throws.
/// </summary>
internal sealed class TrainerOptionOverrides
{
    private readonly Dictionary<string, List<(string Property, string Value)>> _byRow;

    private TrainerOptionOverrides(Dictionary<string, List<(string, string)>> byRow) => _byRow = byRow;

    public static TrainerOptionOverrides Parse(string? text)
    {
        var byRow = new Dictionary<string, List<(string, string)>>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(text)) return new TrainerOptionOverrides(byRow);
        foreach (string group in text.Split('|', StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = group.LastIndexOf(':');
            if (colon <= 0) throw new ArgumentException($"Option override '{group}' must read 'Row:Option=Value;…'.");
            var list = new List<(string, string)>();
            foreach (string pair in group[(colon + 1)..].Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = pair.IndexOf('=');
                if (eq <= 0) throw new ArgumentException($"Option override '{pair}' must read 'Property=Value'.");
                list.Add((pair[..eq].Trim(), pair[(eq + 1)..].Trim()));
            }
            byRow[group[..colon].Trim()] = list;
        }
        return new TrainerOptionOverrides(byRow);
    }

    /// <summary>"Property=Value; …" for the row, or null when nothing is overridden.</summary>
    public string? For(string row) => _byRow.TryGetValue(row, out var list) ? string.Join("; ", list.Select(p => $"{p.Property}={p.Value}")) : null;

    public void Apply(string row, object options)
    {
        if (!_byRow.TryGetValue(row, out var list)) return;
        foreach (var (name, value) in list)
        {
            // ML.NET-style options are public fields; a few are properties.
            const BindingFlags flags = BindingFlags.Public | BindingFlags.Instance;
            if (options.GetType().GetField(name, flags) is FieldInfo field) field.SetValue(options, Convert(value, field.FieldType, name));
            else if (options.GetType().GetProperty(name, flags) is PropertyInfo property) property.SetValue(options, Convert(value, property.PropertyType, name));
            else throw new ArgumentException($"{options.GetType().FullName} has no option '{name}' (override for row '{row}').");
        }
    }

    private static object? Convert(string value, Type type, string name)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        try
        {
            if (target.IsEnum) return Enum.Parse(target, value, ignoreCase: true);
            if (target == typeof(int[])) return value.Length == 0 ? Array.Empty<int>() : value.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            return System.Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException or ArgumentException)
        {
            throw new ArgumentException($"Override {name}={value}: not a valid {target.Name}.", e);
        }
    }
}
