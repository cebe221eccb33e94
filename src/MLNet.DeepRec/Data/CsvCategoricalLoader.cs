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
        var cells = new List<Cell>();
        Split(header, separator, path, 1, cells);
        var names = cells.Select(c => c.Text(header).Trim().ToString()).ToArray();
        if (names.Any(string.IsNullOrEmpty)) throw new FormatException($"CSV file {path}: the header has an empty column name: \"{header}\".");
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length) throw new FormatException($"CSV file {path}: the header repeats a column name: \"{header}\".");
        int labelIndex = Array.IndexOf(names, labelColumnName);
        if (labelIndex < 0) throw new FormatException($"CSV file {path}: the header has no label column '{labelColumnName}' (columns: {string.Join(", ", names)}).");

        var text = names.Select(_ => new List<ReadOnlyMemory<char>>()).ToArray();
        var labels = new List<float>();
        // Each distinct value is stored once; cells are looked up as spans of the line, so a repeated value allocates nothing.
        var interned = new Dictionary<string, ReadOnlyMemory<char>>(StringComparer.Ordinal);
        var lookup = interned.GetAlternateLookup<ReadOnlySpan<char>>();
        int lineNumber = 1;
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            lineNumber++;
            if (line.AsSpan().Trim().IsEmpty) continue;
            Split(line, separator, path, lineNumber, cells);
            if (cells.Count != names.Length)
                throw new FormatException($"CSV file {path}, line {lineNumber}: {cells.Count} fields where the header has {names.Length}. Line: \"{line}\"");
            for (int c = 0; c < names.Length; c++)
            {
                var cell = cells[c].Text(line);
                if (c == labelIndex)
                {
                    if (!float.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out float label) || !float.IsFinite(label))
                        throw new FormatException($"CSV file {path}, line {lineNumber}: label '{labelColumnName}' = '{cell}' is not a finite number.");
                    labels.Add(label);
                }
                else
                {
                    var v = cell.Trim();
                    if (!lookup.TryGetValue(v, out var memory))
                    {
                        string value = v.ToString();
                        interned[value] = memory = value.AsMemory();
                    }
                    text[c].Add(memory);
                }
            }
        }
        var columns = new List<(string, Array)> { (labelColumnName, labels.ToArray()) };
        for (int c = 0; c < names.Length; c++)
            if (c != labelIndex) columns.Add((names[c], text[c].ToArray()));
        return new ColumnarDataView(columns);
    }

    /// <summary>A field of a line: a range of the line, or the unescaped text of a quoted field.</summary>
    private readonly record struct Cell(int Start, int Length, string? Unquoted)
    {
        public ReadOnlySpan<char> Text(string line) => Unquoted != null ? Unquoted.AsSpan() : line.AsSpan(Start, Length);
    }

    /// <summary>Splits one CSV line into <paramref name="cells"/>; double-quoted fields may contain the separator and doubled quotes.</summary>
    private static void Split(string line, char separator, string path, int lineNumber, List<Cell> cells)
    {
        cells.Clear();
        int start = 0;
        while (true)
        {
            if (start < line.Length && line[start] == '"')
            {
                // A quoted field: unescaped into a string (the only case that allocates).
                var current = new StringBuilder();
                int i = start + 1;
                bool closed = false;
                for (; i < line.Length; i++)
                {
                    char ch = line[i];
                    if (ch != '"') { current.Append(ch); continue; }
                    if (i + 1 < line.Length && line[i + 1] == '"') { current.Append('"'); i++; continue; }
                    closed = true;
                    i++;
                    break;
                }
                if (!closed) throw new FormatException($"CSV file {path}, line {lineNumber}: unterminated quoted field. Line: \"{line}\"");
                // Text after the closing quote up to the separator belongs to the field, as before.
                int end = line.IndexOf(separator, i);
                if (end < 0) end = line.Length;
                current.Append(line, i, end - i);
                cells.Add(new Cell(0, 0, current.ToString()));
                if (end == line.Length) return;
                start = end + 1;
                continue;
            }
            int next = line.IndexOf(separator, start);
            if (next < 0) { cells.Add(new Cell(start, line.Length - start, null)); return; }
            cells.Add(new Cell(start, next - start, null));
            start = next + 1;
        }
    }
}
