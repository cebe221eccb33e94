using System.Globalization;
using System.Text;

namespace MLNet.DeepRec.Data;

/// <summary>Parses a CSV file of categorical columns with a header and one numeric label column.</summary>
internal static class CsvCategoricalLoader
{
    public static ColumnarDataView Load(string path, string labelColumnName, char separator)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"CSV file not found: {path}", path);
        using var reader = new StreamReader(path);
        string? header = reader.ReadLine();
        while (header != null && header.Trim().Length == 0) header = reader.ReadLine();
        if (header == null) throw new FormatException($"CSV file {path} is empty; a header line is required.");
        var names = Split(header, separator, path, 1).Select(n => n.Trim()).ToArray();
        if (names.Any(string.IsNullOrEmpty)) throw new FormatException($"CSV file {path}: the header has an empty column name: \"{header}\".");
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length) throw new FormatException($"CSV file {path}: the header repeats a column name: \"{header}\".");
        int labelIndex = Array.IndexOf(names, labelColumnName);
        if (labelIndex < 0) throw new FormatException($"CSV file {path}: the header has no label column '{labelColumnName}' (columns: {string.Join(", ", names)}).");

        var text = names.Select(_ => new List<ReadOnlyMemory<char>>()).ToArray();
        var labels = new List<float>();
        var interned = new Dictionary<string, ReadOnlyMemory<char>>(StringComparer.Ordinal);
        int lineNumber = 1;
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            var fields = Split(line, separator, path, lineNumber);
            if (fields.Count != names.Length)
                throw new FormatException($"CSV file {path}, line {lineNumber}: {fields.Count} fields where the header has {names.Length}. Line: \"{line}\"");
            for (int c = 0; c < names.Length; c++)
            {
                if (c == labelIndex)
                {
                    if (!float.TryParse(fields[c], NumberStyles.Float, CultureInfo.InvariantCulture, out float label) || !float.IsFinite(label))
                        throw new FormatException($"CSV file {path}, line {lineNumber}: label '{labelColumnName}' = '{fields[c]}' is not a finite number.");
                    labels.Add(label);
                }
                else
                {
                    string v = fields[c].Trim();
                    if (!interned.TryGetValue(v, out var memory)) interned[v] = memory = v.AsMemory();
                    text[c].Add(memory);
                }
            }
        }
        var columns = new List<(string, Array)> { (labelColumnName, labels.ToArray()) };
        for (int c = 0; c < names.Length; c++)
            if (c != labelIndex) columns.Add((names[c], text[c].ToArray()));
        return new ColumnarDataView(columns);
    }

    /// <summary>Splits one CSV line; double-quoted fields may contain the separator and doubled quotes.</summary>
    private static List<string> Split(string line, char separator, string path, int lineNumber)
    {
        var fields = new List<string>();
        var current = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { current.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else current.Append(ch);
            }
            else if (ch == '"' && current.Length == 0) quoted = true;
            else if (ch == separator) { fields.Add(current.ToString()); current.Clear(); }
            else current.Append(ch);
        }
        if (quoted) throw new FormatException($"CSV file {path}, line {lineNumber}: unterminated quoted field. Line: \"{line}\"");
        fields.Add(current.ToString());
        return fields;
    }
}
