using System.Text;
using System.Text.RegularExpressions;

namespace MLNet.DeepRec.Tests.DocSamples;

/// <summary>
/// Reads the two sides of the doc-sample contract: the named regions of compiled C# under
/// <c>test/MLNet.DeepRec.Tests/DocSamples</c> (<c>// &lt;doc:NAME&gt;</c> … <c>// &lt;/doc:NAME&gt;</c>) and the fenced code
/// blocks of README.md and docs/**/*.md, each C# block named by an <c>&lt;!-- sample: NAME --&gt;</c> comment on the
/// line before its fence.
/// </summary>
internal static partial class DocSampleSource
{
    /// <summary>The folder that holds MLNet.DeepRec.sln, found by walking up from the test assembly's folder.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLNet.DeepRec.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} contains MLNet.DeepRec.sln.");
    }

    public static string SampleFolder => Path.Combine(RepositoryRoot, "test", "MLNet.DeepRec.Tests", "DocSamples");

    /// <summary>Markdown pages whose C# blocks must be compiled samples: README.md and docs/**/*.md except the generated benchmarks page.</summary>
    public static IReadOnlyList<string> MarkdownFiles()
    {
        var files = new List<string> { Path.Combine(RepositoryRoot, "README.md") };
        files.AddRange(Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "docs"), "*.md", SearchOption.AllDirectories)
            .Where(f => Relative(f) != "docs/benchmarks.md")
            .OrderBy(f => f, StringComparer.Ordinal));
        return files;
    }

    public static string Relative(string path) => Path.GetRelativePath(RepositoryRoot, path).Replace('\\', '/');

    /// <summary>One named region: its normalised text and where it is.</summary>
    public sealed record Region(string Name, string File, int Line, string Text);

    [GeneratedRegex(@"^\s*//\s*<(?<close>/?)doc:(?<name>[A-Za-z0-9_.-]+)>\s*$")]
    private static partial Regex MarkerRegex();

    /// <summary>
    /// Every region of the sample folder. A name may occur several times in one file: its pieces (e.g. the using
    /// directives at the top of the file, the body of a test method and the types declared after it) are joined in file
    /// order with one blank line between them. Marker lines of other regions inside a region are left out, so regions
    /// can nest. Problems (unclosed, unopened or repeated-in-another-file regions) are added to <paramref name="errors"/>.
    /// </summary>
    public static Dictionary<string, Region> ReadRegions(List<string> errors)
    {
        var regions = new Dictionary<string, Region>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(SampleFolder, "*.cs", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal))
        {
            foreach (var (name, region) in ParseRegions(Relative(file), File.ReadAllLines(file), errors))
            {
                if (regions.TryGetValue(name, out var other))
                    errors.Add($"{region.File}:{region.Line}: region '{name}' is also defined in {other.File}:{other.Line}; a name belongs to one file.");
                else
                    regions[name] = region;
            }
        }
        return regions;
    }

    /// <summary>The regions of one C# file (see <see cref="ReadRegions"/>).</summary>
    public static Dictionary<string, Region> ParseRegions(string file, string[] lines, List<string> errors)
    {
        var open = new Dictionary<string, (int Start, List<string> Lines)>(StringComparer.Ordinal);
        var pieces = new Dictionary<string, (int FirstLine, List<string> Pieces)>(StringComparer.Ordinal);
        for (int n = 0; n < lines.Length; n++)
        {
            var m = MarkerRegex().Match(lines[n]);
            if (m.Success)
            {
                string name = m.Groups["name"].Value;
                if (m.Groups["close"].Value.Length == 0)
                {
                    if (open.ContainsKey(name)) errors.Add($"{file}:{n + 1}: region '{name}' opened twice without being closed.");
                    open[name] = (n + 1, new List<string>());
                }
                else if (!open.Remove(name, out var region))
                    errors.Add($"{file}:{n + 1}: '// </doc:{name}>' closes a region that is not open.");
                else
                {
                    if (!pieces.TryGetValue(name, out var p)) pieces[name] = p = (region.Start, new List<string>());
                    p.Pieces.Add(Normalize(region.Lines));
                }
                continue;
            }
            foreach (var region in open.Values) region.Lines.Add(lines[n]);
        }
        foreach (var (name, region) in open)
            errors.Add($"{file}:{region.Start}: region '{name}' is never closed (add '// </doc:{name}>').");
        return pieces.ToDictionary(p => p.Key, p => new Region(p.Key, file, p.Value.FirstLine, string.Join("\n\n", p.Value.Pieces)), StringComparer.Ordinal);
    }

    /// <summary>A fenced code block of a markdown page.</summary>
    /// <param name="Language">The fence's info string (first word), empty when there is none.</param>
    /// <param name="SampleName">The name from <c>&lt;!-- sample: NAME --&gt;</c> on the line before the fence, or null.</param>
    /// <param name="FenceLine">1-based line of the opening fence.</param>
    /// <param name="ContentStart">0-based index of the first content line.</param>
    /// <param name="ContentEnd">0-based index of the closing fence.</param>
    /// <param name="Indent">The opening fence's indentation, stripped from the content lines.</param>
    public sealed record CodeBlock(string File, string Language, string? SampleName, int FenceLine, int ContentStart, int ContentEnd, string Indent, string Text)
    {
        public bool IsCSharp => Language is "csharp" or "cs" or "c#" or "C#";
    }

    [GeneratedRegex(@"^(?<indent>\s*)(?<fence>`{3,}|~{3,})\s*(?<info>[^`\s]*)")]
    private static partial Regex FenceRegex();

    [GeneratedRegex(@"^\s*<!--\s*sample:\s*(?<name>[A-Za-z0-9_.-]+)\s*-->\s*$")]
    private static partial Regex SampleCommentRegex();

    public static bool IsSampleComment(string line, out string name)
    {
        var m = SampleCommentRegex().Match(line);
        name = m.Success ? m.Groups["name"].Value : "";
        return m.Success;
    }

    /// <summary>The fenced code blocks of one markdown file, in order.</summary>
    public static List<CodeBlock> ReadBlocks(string file, string[] lines)
    {
        var blocks = new List<CodeBlock>();
        for (int n = 0; n < lines.Length; n++)
        {
            var open = FenceRegex().Match(lines[n]);
            if (!open.Success) continue;
            string indent = open.Groups["indent"].Value, fence = open.Groups["fence"].Value;
            int end = n + 1;
            while (end < lines.Length && !IsClosingFence(lines[end], fence)) end++;
            var content = lines[(n + 1)..Math.Min(end, lines.Length)]
                .Select(l => l.StartsWith(indent, StringComparison.Ordinal) ? l[indent.Length..] : l.TrimStart()).ToList();
            int previous = n - 1;
            while (previous >= 0 && string.IsNullOrWhiteSpace(lines[previous])) previous--;
            string? name = previous >= 0 && IsSampleComment(lines[previous], out var found) ? found : null;
            blocks.Add(new CodeBlock(file, open.Groups["info"].Value, name, n + 1, n + 1, end, indent, Normalize(content)));
            n = end;
        }
        return blocks;
    }

    private static bool IsClosingFence(string line, string fence)
    {
        var t = line.Trim();
        return t.Length >= fence.Length && t.All(c => c == fence[0]);
    }

    /// <summary>
    /// The comparison form of a sample: trailing whitespace removed, blank lines at either end removed, runs of blank
    /// lines collapsed to one, and the common indentation of the non-blank lines removed. Tabs count as four spaces.
    /// </summary>
    public static string Normalize(IEnumerable<string> lines)
    {
        var list = lines.Select(l => l.Replace("\t", "    ", StringComparison.Ordinal).TrimEnd()).ToList();
        while (list.Count > 0 && list[0].Length == 0) list.RemoveAt(0);
        while (list.Count > 0 && list[^1].Length == 0) list.RemoveAt(list.Count - 1);
        int indent = list.Where(l => l.Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
        var sb = new StringBuilder();
        bool previousBlank = false;
        foreach (var l in list)
        {
            bool blank = l.Length == 0;
            if (blank && previousBlank) continue;
            if (sb.Length > 0) sb.Append('\n');
            if (!blank) sb.Append(l, indent, l.Length - indent);
            previousBlank = blank;
        }
        return sb.ToString();
    }
}
