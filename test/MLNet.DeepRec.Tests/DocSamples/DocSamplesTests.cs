using NUnit.Framework;
using static MLNet.DeepRec.Tests.DocSamples.DocSampleSource;

namespace MLNet.DeepRec.Tests.DocSamples;

/// <summary>
/// Keeps the docs from rotting: every <c>```csharp</c> block of README.md and docs/**/*.md (except the generated
/// docs/benchmarks.md) must be, character for character after normalising indentation and trailing whitespace, a
/// region of compiled code in this folder that a test runs. A block names its region with
/// <c>&lt;!-- sample: NAME --&gt;</c> on the line before the fence; the code marks it with <c>// &lt;doc:NAME&gt;</c> …
/// <c>// &lt;/doc:NAME&gt;</c>. Set DEEPREC_UPDATE_DOC_SAMPLES=1 to copy the regions into the markdown instead of
/// failing (then review the diff).
/// </summary>
public class DocSamplesTests
{
    private const string UpdateVariable = "DEEPREC_UPDATE_DOC_SAMPLES";

    private static readonly string[] ExemptLanguages = ["bash", "sh", "console", "text", "xml", "json", "csv", "powershell"];

    [Test]
    public void EveryCSharpBlockInTheDocsIsACompiledSample()
    {
        var errors = new List<string>();
        var regions = ReadRegions(errors);
        bool update = Environment.GetEnvironmentVariable(UpdateVariable) == "1";
        int blocks = 0, updated = 0;
        foreach (var file in MarkdownFiles())
        {
            var lines = File.ReadAllLines(file);
            var (checkedBlocks, replacements) = Check(Relative(file), lines, regions, errors, new HashSet<string>(), update);
            blocks += checkedBlocks;
            if (replacements.Count > 0)
            {
                var result = lines.ToList();
                foreach (var (block, text) in replacements.OrderByDescending(r => r.Block.ContentStart))
                {
                    result.RemoveRange(block.ContentStart, block.ContentEnd - block.ContentStart);
                    result.InsertRange(block.ContentStart, text.Split('\n').Select(l => l.Length == 0 ? "" : block.Indent + l));
                }
                File.WriteAllText(file, string.Join("\n", result) + "\n");
                updated += replacements.Count;
            }
        }
        TestContext.Out.WriteLine($"{blocks} C# blocks checked against {regions.Count} regions{(update ? $"; {updated} updated from the code" : "")}.");
        Assert.That(errors, Is.Empty, string.Join("\n\n", errors));
        Assert.That(blocks, Is.GreaterThan(10), "the docs should hold compiled samples");
    }

    [Test]
    public void EveryRegionIsShownInTheDocs()
    {
        var errors = new List<string>();
        var regions = ReadRegions(errors);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in MarkdownFiles())
            Check(Relative(file), File.ReadAllLines(file), regions, new List<string>(), used, update: false);
        foreach (var region in regions.Values.Where(r => !used.Contains(r.Name)).OrderBy(r => r.File).ThenBy(r => r.Line))
            errors.Add($"{region.File}:{region.Line}: region '{region.Name}' is shown by no page. Put it in a page "
                + $"(<!-- sample: {region.Name} --> before a ```csharp fence) or remove its // <doc:{region.Name}> markers.");
        Assert.That(errors, Is.Empty, string.Join("\n\n", errors));
    }

    /// <summary>
    /// Checks one page: returns the number of C# blocks and, in update mode, the blocks to replace with their region.
    /// Adds every named region found to <paramref name="used"/>.
    /// </summary>
    internal static (int Blocks, List<(CodeBlock Block, string Text)> Replacements) Check(string file, string[] lines,
        IReadOnlyDictionary<string, Region> regions, List<string> errors, HashSet<string> used, bool update)
    {
        var blocks = ReadBlocks(file, lines);
        var replacements = new List<(CodeBlock, string)>();
        int count = 0;
        string fix = $"Set {UpdateVariable}=1 and run the DocSamples tests to copy the code into the page, or edit the region and the page together.";

        // A sample comment must stand right before a fence.
        var fenceLines = blocks.Select(b => b.FenceLine).ToHashSet();
        for (int n = 0; n < lines.Length; n++)
        {
            if (!IsSampleComment(lines[n], out var name)) continue;
            int next = n + 1;
            while (next < lines.Length && string.IsNullOrWhiteSpace(lines[next])) next++;
            if (!fenceLines.Contains(next + 1))
                errors.Add($"{file}:{n + 1}: '<!-- sample: {name} -->' is not followed by a code fence.");
        }

        foreach (var block in blocks)
        {
            string where = $"{file}:{block.FenceLine}";
            if (block.Language.Length == 0)
            {
                errors.Add($"{where}: a code fence without a language. Use ```csharp for C# (with a sample name) or ```text for output.");
                continue;
            }
            if (!block.IsCSharp)
            {
                if (block.SampleName != null)
                    errors.Add($"{where}: '<!-- sample: {block.SampleName} -->' names a ```{block.Language} block; only C# blocks are samples.");
                else if (!ExemptLanguages.Contains(block.Language))
                    errors.Add($"{where}: unknown fence language '{block.Language}'. Use ```csharp for C#, or one of {string.Join(", ", ExemptLanguages)}.");
                continue;
            }
            count++;
            if (block.SampleName == null)
            {
                errors.Add($"{where}: a ```csharp block without a sample name. Every C# sample must be compiled and run: put its code "
                    + "in a test under test/MLNet.DeepRec.Tests/DocSamples between '// <doc:NAME>' and '// </doc:NAME>', and write "
                    + "'<!-- sample: NAME -->' on the line before the fence.");
                continue;
            }
            used.Add(block.SampleName);
            if (!regions.TryGetValue(block.SampleName, out var region))
            {
                errors.Add($"{where}: sample '{block.SampleName}' has no region in test/MLNet.DeepRec.Tests/DocSamples. Add the code between "
                    + $"'// <doc:{block.SampleName}>' and '// </doc:{block.SampleName}>' in a test that runs it.");
                continue;
            }
            if (block.Text == region.Text) continue;
            if (update)
            {
                replacements.Add((block, region.Text));
                continue;
            }
            errors.Add($"{where}: sample '{block.SampleName}' differs from its compiled region ({region.File}:{region.Line}). "
                + FirstDifference(block.Text, region.Text) + "\n" + fix);
        }
        return (count, replacements);
    }

    internal static string FirstDifference(string doc, string code)
    {
        var d = doc.Split('\n');
        var c = code.Split('\n');
        for (int i = 0; i < Math.Max(d.Length, c.Length); i++)
        {
            string? dl = i < d.Length ? d[i] : null, cl = i < c.Length ? c[i] : null;
            if (dl != cl)
                return $"First difference at line {i + 1} of the block:\n  page: {dl ?? "(end of block)"}\n  code: {cl ?? "(end of region)"}";
        }
        return "They differ.";
    }

    // The checker itself, on made-up pages.

    private static readonly Dictionary<string, Region> MadeUpRegions = new()
    {
        ["demo"] = new Region("demo", "Demo.cs", 1, "var x = 1;\nConsole.WriteLine(x);"),
    };

    private static List<string> CheckPage(string page, HashSet<string>? used = null)
    {
        var errors = new List<string>();
        Check("page.md", page.Split('\n'), MadeUpRegions, errors, used ?? new HashSet<string>(), update: false);
        return errors;
    }

    [Test]
    public void CheckerAcceptsAMatchingBlockWhateverItsIndentation()
    {
        var used = new HashSet<string>();
        Assert.That(CheckPage("Text\n\n<!-- sample: demo -->\n```csharp\n    var x = 1;   \n    Console.WriteLine(x);\n```\n", used), Is.Empty);
        Assert.That(used, Does.Contain("demo"));
        Assert.That(CheckPage("1. Step\n\n   <!-- sample: demo -->\n   ```csharp\n   var x = 1;\n   Console.WriteLine(x);\n   ```\n\n```bash\ndotnet test\n```\n"), Is.Empty);
    }

    [Test]
    public void CheckerRejectsUnnamedDriftedAndUnknownSamplesWithFileAndLine()
    {
        var unnamed = CheckPage("Intro\n```csharp\nvar x = 1;\n```\n");
        Assert.That(unnamed, Has.Count.EqualTo(1));
        Assert.That(unnamed[0], Does.StartWith("page.md:2:").And.Contain("without a sample name"));

        var drifted = CheckPage("<!-- sample: demo -->\n```csharp\nvar x = 2;\nConsole.WriteLine(x);\n```\n");
        Assert.That(drifted, Has.Count.EqualTo(1));
        Assert.That(drifted[0], Does.StartWith("page.md:2:").And.Contain("differs").And.Contain("var x = 2;").And.Contain(UpdateVariable));

        var unknown = CheckPage("<!-- sample: nope -->\n```csharp\nvar x = 1;\n```\n");
        Assert.That(unknown[0], Does.Contain("'nope' has no region"));

        Assert.That(CheckPage("```\nsome output\n```\n")[0], Does.Contain("without a language"));
        Assert.That(CheckPage("<!-- sample: demo -->\n\nText\n")[0], Does.Contain("not followed by a code fence"));
    }

    [Test]
    public void RegionsJoinTheirPiecesAndLeaveOutNestedMarkers()
    {
        string code = "// <doc:outer>\nusing System;\n// </doc:outer>\nclass C\n{\n    void M()\n    {\n        // <doc:outer>\n        int a = 1;\n        // <doc:inner>\n        int b = a;\n        // </doc:inner>\n        // </doc:outer>\n    }\n}\n";
        var errors = new List<string>();
        var regions = ParseRegions("Demo.cs", code.Split('\n'), errors);
        Assert.That(errors, Is.Empty);
        Assert.That(regions["outer"].Text, Is.EqualTo("using System;\n\nint a = 1;\nint b = a;"));
        Assert.That(regions["inner"].Text, Is.EqualTo("int b = a;"));
        Assert.That(regions["outer"].Line, Is.EqualTo(1));

        var broken = new List<string>();
        ParseRegions("Broken.cs", "// <doc:a>\nint x;\n// </doc:b>".Split('\n'), broken);
        Assert.That(broken, Has.Some.Contains("Broken.cs:3:").And.Some.Contains("'a' is never closed"));
    }
}

/// <summary>Relative links, their anchors, and the source paths the pages name in backticks must exist.</summary>
public partial class DocLinksTests
{
    [System.Text.RegularExpressions.GeneratedRegex(@"(?<!!)\[[^\]]*\]\((?<target>[^)\s]+)\)")]
    private static partial System.Text.RegularExpressions.Regex LinkRegex();

    [System.Text.RegularExpressions.GeneratedRegex(@"`(?<path>[A-Za-z0-9_.\-/]+/[A-Za-z0-9_.\-]+\.(?:cs|md|csproj|targets|props|sln))`")]
    private static partial System.Text.RegularExpressions.Regex CodePathRegex();

    [Test]
    public void LinksAnchorsAndNamedFilesExist()
    {
        var errors = new List<string>();
        string src = Path.Combine(RepositoryRoot, "src", "MLNet.DeepRec");
        foreach (var file in MarkdownFiles())
        {
            var lines = File.ReadAllLines(file);
            bool inFence = false;
            for (int n = 0; n < lines.Length; n++)
            {
                if (lines[n].TrimStart().StartsWith("```", StringComparison.Ordinal)) { inFence = !inFence; continue; }
                if (inFence) continue;
                string where = $"{Relative(file)}:{n + 1}";
                foreach (System.Text.RegularExpressions.Match m in LinkRegex().Matches(lines[n]))
                {
                    string target = m.Groups["target"].Value;
                    if (target.StartsWith("http:", StringComparison.Ordinal) || target.StartsWith("https:", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
                        continue;
                    int hash = target.IndexOf('#');
                    string pathPart = hash >= 0 ? target[..hash] : target, anchor = hash >= 0 ? target[(hash + 1)..] : "";
                    string resolved = pathPart.Length == 0 ? file : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, pathPart));
                    if (!File.Exists(resolved) && !Directory.Exists(resolved)) { errors.Add($"{where}: link to '{target}': no such file."); continue; }
                    if (anchor.Length > 0 && resolved.EndsWith(".md", StringComparison.Ordinal) && !Anchors(resolved).Contains(anchor))
                        errors.Add($"{where}: link to '{target}': {Relative(resolved)} has no heading or id '{anchor}'.");
                }
                foreach (System.Text.RegularExpressions.Match m in CodePathRegex().Matches(lines[n]))
                {
                    string path = m.Groups["path"].Value;
                    if (new[] { RepositoryRoot, src, Path.GetDirectoryName(file)! }.All(root => !File.Exists(Path.Combine(root, path))))
                        errors.Add($"{where}: `{path}` is neither under the repository root nor under src/MLNet.DeepRec.");
                }
            }
        }
        Assert.That(errors, Is.Empty, string.Join("\n", errors));
    }

    /// <summary>GitHub's heading anchors (lower case, punctuation dropped, spaces to hyphens, duplicates numbered) and explicit ids.</summary>
    internal static HashSet<string> Anchors(string markdownFile)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        bool inFence = false;
        foreach (var line in File.ReadLines(markdownFile))
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal)) { inFence = !inFence; continue; }
            if (inFence) continue;
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(line, "<a id=\"(?<id>[^\"]+)\""))
                anchors.Add(m.Groups["id"].Value);
            if (!line.StartsWith('#')) continue;
            string text = line.TrimStart('#').Trim().ToLowerInvariant();
            var slug = new System.Text.StringBuilder();
            foreach (char c in text)
            {
                if (char.IsLetterOrDigit(c) || c == '-' || c == '_') slug.Append(c);
                else if (c == ' ') slug.Append('-');
            }
            string s = slug.ToString(), unique = s;
            for (int k = 1; !anchors.Add(unique); k++) unique = $"{s}-{k}";
        }
        return anchors;
    }
}
