// The "fuzz" probe (issue #12): a deterministic mutator over a saved model zip, an exported ONNX file and a checkpoint,
// each mutant handed to the loader that reads such files from disk. Run in a child process with a memory cap (see
// FuzzTests): a native crash or an over-allocation ends the process, which the test sees as a missing summary line.
using System.Globalization;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Serving;
using MLNet.DeepRec.Trainers;

internal static class Fuzz
{
    /// <summary>
    /// fuzz CASES SEED WORKDIR: writes the three originals into WORKDIR, then CASES mutants (zip, ONNX, checkpoint in
    /// turn). Prints one line per case whose loader threw something other than InvalidDataException, IOException or
    /// ArgumentException ("undocumented ..."), and a final "key=value" summary line.
    /// </summary>
    public static int Run(string[] args)
    {
        int cases = int.Parse(args[0], CultureInfo.InvariantCulture);
        int seed = int.Parse(args[1], CultureInfo.InvariantCulture);
        string work = args[2];
        Directory.CreateDirectory(work);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (zip, onnx, checkpoint) = Originals(work);
        // Proof that the caps the test set are in force: 20 GB of address space for libtorch (never touched, so harmless
        // without a cap) and 1.5 GB for the GC must both be refused.
        bool nativeCapped = Refused(() => TorchSharp.torch.empty(5L << 30, dtype: TorchSharp.torch.float32).Dispose());
        bool managedCapped = Refused(() => GC.KeepAlive(new byte[3 << 29]));

        var random = new Random(seed);
        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        int undocumented = 0, loaded = 0, scoringFailed = 0;
        double maxRss = 0;
        for (int n = 0; n < cases; n++)
        {
            string kind = (n % 3) switch { 0 => "zip", 1 => "onnx", _ => "checkpoint" };
            var (mutation, bytes) = kind switch
            {
                "zip" => MutateModelZip(zip, random),
                "onnx" => MutateOnnx(onnx, random),
                _ => MutateCheckpoint(checkpoint, random),
            };
            string path = Path.Combine(work, $"case{n}.{kind}");
            File.WriteAllBytes(path, bytes);
            string outcome;
            try
            {
                if (Load(kind, path)) scoringFailed++;
                loaded++;
                outcome = "loaded";
            }
            catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException)
            {
                outcome = e.GetType().Name;
            }
            catch (Exception e)
            {
                undocumented++;
                outcome = "undocumented " + e.GetType().Name;
                Console.WriteLine($"undocumented case={n} kind={kind} mutation={mutation}: {e.GetType().FullName}: {e.Message.ReplaceLineEndings(" ")}");
            }
            outcomes[$"{kind}:{outcome}"] = outcomes.GetValueOrDefault($"{kind}:{outcome}") + 1;
            File.Delete(path);
            maxRss = Math.Max(maxRss, Status("VmRSS"));
        }
        Console.WriteLine("outcomes " + string.Join(" ", outcomes.Select(o => $"{o.Key.Replace(' ', '_')}={o.Value}")));
        Console.WriteLine(string.Join(" ",
            $"cases={cases}", $"native_capped={(nativeCapped ? 1 : 0)}", $"managed_capped={(managedCapped ? 1 : 0)}", $"undocumented={undocumented}", $"loaded={loaded}", $"scoring_failed={scoringFailed}",
            $"max_rss_mb={maxRss.ToString("F0", CultureInfo.InvariantCulture)}", $"peak_mb={Status("VmHWM").ToString("F0", CultureInfo.InvariantCulture)}",
            $"vm_peak_mb={Status("VmPeak").ToString("F0", CultureInfo.InvariantCulture)}",
            $"seconds={watch.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)}"));
        return 0;
    }

    private static bool Refused(Action allocate)
    {
        try { allocate(); return false; }
        catch (Exception e) when (e is OutOfMemoryException or System.Runtime.InteropServices.ExternalException) { return true; }
    }

    /// <summary>Loads the file the way an application would and scores one row; true when a loaded model failed to score.</summary>
    private static bool Load(string kind, string path)
    {
        var ml = new MLContext(1);
        switch (kind)
        {
            case "zip":
            {
                var model = DeepRecServing.LoadModel(ml, path);
                try
                {
                    using var engine = ml.Model.CreatePredictionEngine<Pair, Prediction>(model);
                    _ = engine.Predict(new Pair { UserId = "u1", ItemId = "i1" });
                    return false;
                }
                catch (Exception e) when (e is not OutOfMemoryException) { return true; }
                finally { (model as IDisposable)?.Dispose(); }
            }
            case "onnx":
                new OnnxFileTransformer(ml, File.ReadAllBytes(path)).Dispose();
                return false;
            default:
                CollaborativeFilteringTransformer.LoadCheckpoint(ml, path).Dispose();
                return false;
        }
    }

    private static (byte[] Zip, byte[] Onnx, byte[] Checkpoint) Originals(string work)
    {
        var ml = new MLContext(1);
        var all = ml.DeepRec().Data.GenerateSyntheticInteractions(new SyntheticInteractionOptions { UserCount = 40, ItemCount = 60, InteractionsPerUser = 8, Seed = 3 });
        var keys = ml.Transforms.Conversion.MapValueToKey("UserKey", "UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemKey", "ItemId")).Fit(all);
        using var model = ml.DeepRec().Trainers.NeuMF(new NeuMFTrainer.Options
        {
            UserIdColumnName = "UserKey", ItemIdColumnName = "ItemKey", Factors = 4, MlpLayers = [8, 4], NumberOfEpochs = 1, Seed = 1,
        }).Fit(keys.Transform(all));
        string zip = Path.Combine(work, "model.zip"), onnx = Path.Combine(work, "model.onnx"), checkpoint = Path.Combine(work, "model.ckpt");
        ml.Model.Save(new TransformerChain<ITransformer>(keys, model), all.Schema, zip);
        model.ExportOnnx(onnx);
        model.SaveCheckpoint(checkpoint);
        return (File.ReadAllBytes(zip), File.ReadAllBytes(onnx), File.ReadAllBytes(checkpoint));
    }

    // ---- mutations --------------------------------------------------------------------------------------------------

    private static readonly long[] HostileNumbers = [0, -1, -3, 1, 2, 100_000_000, 50_000_000, int.MaxValue, int.MinValue, 1L << 30, 1L << 40, -(1L << 40)];

    private static (string, byte[]) MutateBytes(byte[] bytes, Random random)
    {
        byte[] copy = (byte[])bytes.Clone();
        switch (random.Next(3))
        {
            case 0:
                int length = random.Next(copy.Length);
                return ($"truncated to {length}", copy[..length]);
            case 1:
                int flips = random.Next(1, 9);
                for (int f = 0; f < flips; f++) copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
                return ($"{flips} bit flips", copy);
            default:
                int at = random.Next(copy.Length), count = Math.Min(random.Next(1, 64), copy.Length - at);
                random.NextBytes(copy.AsSpan(at, count));
                return ($"{count} random bytes at {at}", copy);
        }
    }

    private static (string, byte[]) MutateModelZip(byte[] zip, Random random)
    {
        var entries = ReadZip(zip);
        switch (random.Next(6))
        {
            case 0: return MutateBytes(zip, random);
            case 1:
            {
                string victim = entries.Keys.ElementAt(random.Next(entries.Count));
                entries.Remove(victim);
                return ($"entry {victim} removed", WriteZip(entries));
            }
            case 2:
            {
                string a = entries.Keys.ElementAt(random.Next(entries.Count)), b = entries.Keys.ElementAt(random.Next(entries.Count));
                (entries[a], entries[b]) = (entries[b], entries[a]);
                return ($"entries {a} and {b} swapped", WriteZip(entries));
            }
            case 3 or 4:
            {
                // The ONNX model inside, mutated like an exported file; the length prefix is kept consistent.
                string name = entries.Keys.First(k => k.EndsWith("/OnnxModel", StringComparison.Ordinal));
                var (what, onnx) = MutateOnnx(entries[name][4..], random);
                entries[name] = [.. BitConverter.GetBytes(onnx.Length), .. onnx];
                return ($"{name}: {what}", WriteZip(entries));
            }
            default:
            {
                // Damage inside an entry, re-zipped with a valid CRC: reaches ML.NET's own readers.
                string name = entries.Keys.ElementAt(random.Next(entries.Count));
                var (what, content) = entries[name].Length == 0 ? ("empty", entries[name]) : MutateBytes(entries[name], random);
                entries[name] = content;
                return ($"{name}: {what}", WriteZip(entries));
            }
        }
    }

    private static (string, byte[]) MutateCheckpoint(byte[] checkpoint, Random random)
    {
        var entries = ReadZip(checkpoint);
        switch (random.Next(6))
        {
            case 0: return MutateBytes(checkpoint, random);
            case 1:
            {
                string victim = entries.Keys.ElementAt(random.Next(entries.Count));
                entries.Remove(victim);
                return ($"entry {victim} removed", WriteZip(entries));
            }
            case 2 or 3:
            {
                var manifest = JsonNode.Parse(entries["manifest.json"])!.AsObject();
                string what = EditManifest(manifest, random);
                entries["manifest.json"] = System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
                return ($"manifest: {what}", WriteZip(entries));
            }
            default:
            {
                // A binary entry: an int or long overwritten with a hostile number, or generic damage; valid CRC.
                string[] binary = entries.Keys.Where(k => k.EndsWith(".bin", StringComparison.Ordinal)).ToArray();
                string name = binary[random.Next(binary.Length)];
                byte[] content = entries[name];
                string what;
                if (random.Next(2) == 0 && content.Length >= 8)
                {
                    int at = random.Next(content.Length - 7);
                    long value = HostileNumbers[random.Next(HostileNumbers.Length)];
                    if (random.Next(2) == 0) BitConverter.GetBytes((int)value).CopyTo(content, at); else BitConverter.GetBytes(value).CopyTo(content, at);
                    what = $"{value} written at {at}";
                }
                else (what, content) = MutateBytes(content, random);
                entries[name] = content;
                return ($"{name}: {what}", WriteZip(entries));
            }
        }
    }

    private static string EditManifest(JsonObject manifest, Random random)
    {
        var hp = manifest["HyperParameters"]!.AsObject();
        string[] fields = ["UserCount", "ItemCount", "DeclaredUserCount", "DeclaredItemCount", "FormatVersion", "OptimizerStep", "factors", "layers"];
        string field = fields[random.Next(fields.Length)];
        long value = HostileNumbers[random.Next(HostileNumbers.Length)];
        switch (random.Next(5))
        {
            case 0:
                if (hp.ContainsKey(field)) hp.Remove(field); else manifest.Remove(field);
                return $"{field} removed";
            case 1:
                if (hp.ContainsKey(field)) hp[field] = null; else manifest[field] = null;
                return $"{field} = null";
            case 2:
                string list = random.Next(2) == 0 ? "Users" : "Items";
                manifest[list] = random.Next(2) == 0 ? null : new JsonArray("a", null, "b");
                return $"{list} replaced";
            default:
                if (field is "factors" or "layers")
                {
                    var array = hp[field]?.AsArray() ?? [];
                    var edited = new JsonArray(array.Select(v => (JsonNode?)JsonValue.Create(v!.GetValue<int>())).ToArray());
                    if (edited.Count == 0) edited.Add(0);
                    edited[random.Next(edited.Count)] = JsonValue.Create(value);
                    hp[field] = edited;
                }
                else manifest[field] = JsonValue.Create(value);
                return $"{field} = {value}";
        }
    }

    private static readonly string[] ForeignOperators = ["ConstantOfShape", "Tile", "Range", "Resize", "Loop", "Constant", "Custom"];

    private static (string, byte[]) MutateOnnx(byte[] onnx, Random random)
    {
        switch (random.Next(5))
        {
            case 0 or 1: return MutateBytes(onnx, random);
            case 2:
            {
                // Initializer dims inflated (or made negative): the data stays as it was.
                long factor = HostileNumbers[random.Next(HostileNumbers.Length)];
                string what = "";
                byte[] mutated = RewriteGraphField(onnx, 5, random, tensor => RewriteFields(tensor, field => field == 1, dims =>
                {
                    var input = new CodedInputStream(dims);
                    var values = new List<long>();
                    while (!input.IsAtEnd) values.Add(input.ReadInt64());
                    if (values.Count == 0) values.Add(1);
                    int d = random.Next(values.Count);
                    values[d] = factor is 0 or 1 or 2 ? values[d] * 1000 : factor;
                    what = $"initializer dims [{string.Join(",", values)}]";
                    var output = new MemoryStream();
                    var writer = new CodedOutputStream(output);
                    foreach (long v in values) writer.WriteInt64(v);
                    writer.Flush();
                    return output.ToArray();
                }));
                return (what, mutated);
            }
            default:
            {
                // A node's op_type replaced by a foreign operator or another of ours.
                string op = random.Next(2) == 0 ? ForeignOperators[random.Next(ForeignOperators.Length)] : new[] { "Add", "Gather", "Expand", "Reshape", "TopK" }[random.Next(5)];
                byte[] mutated = RewriteGraphField(onnx, 1, random, node => RewriteFields(node, field => field == 4, _ => System.Text.Encoding.UTF8.GetBytes(op)));
                return ($"op_type {op}", mutated);
            }
        }
    }

    // ---- protobuf and zip plumbing ----------------------------------------------------------------------------------

    /// <summary>Rewrites one occurrence (chosen at random) of the repeated GraphProto field <paramref name="field"/>.</summary>
    private static byte[] RewriteGraphField(byte[] model, int field, Random random, Func<byte[], byte[]> change) =>
        RewriteFields(model, f => f == 7, graph =>
        {
            int count = Fields(graph).Count(f => f.Field == field);
            int chosen = count == 0 ? -1 : random.Next(count), seen = 0;
            return RewriteFields(graph, f => f == field && seen++ == chosen, change);
        });

    /// <summary>Re-encodes a message, passing the content of each length-delimited field that <paramref name="which"/>
    /// selects through <paramref name="change"/> and copying every other field byte for byte.</summary>
    private static byte[] RewriteFields(byte[] message, Func<int, bool> which, Func<byte[], byte[]> change)
    {
        var output = new MemoryStream();
        foreach (var (field, wire, start, end, content) in Fields(message))
        {
            if (wire == WireFormat.WireType.LengthDelimited && which(field))
            {
                var writer = new CodedOutputStream(output, leaveOpen: true);
                writer.WriteTag(field, WireFormat.WireType.LengthDelimited);
                writer.WriteBytes(ByteString.CopyFrom(change(content!)));
                writer.Flush();
            }
            else output.Write(message, start, end - start);
        }
        return output.ToArray();
    }

    private static List<(int Field, WireFormat.WireType Wire, int Start, int End, byte[]? Content)> Fields(byte[] message)
    {
        var fields = new List<(int, WireFormat.WireType, int, int, byte[]?)>();
        var input = new CodedInputStream(message);
        try
        {
            while (true)
            {
                int start = (int)input.Position;
                uint tag = input.ReadTag();
                if (tag == 0) break;
                var wire = WireFormat.GetTagWireType(tag);
                byte[]? content = null;
                if (wire == WireFormat.WireType.LengthDelimited) content = input.ReadBytes().ToByteArray();
                else input.SkipLastField();
                fields.Add((WireFormat.GetTagFieldNumber(tag), wire, start, (int)input.Position, content));
            }
        }
        catch (InvalidProtocolBufferException)
        {
            // An already damaged message: rewrite what could be read.
        }
        return fields;
    }

    private static Dictionary<string, byte[]> ReadZip(byte[] zip)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        foreach (var entry in archive.Entries)
        {
            using var s = entry.Open();
            using var m = new MemoryStream();
            s.CopyTo(m);
            entries[entry.FullName] = m.ToArray();
        }
        return entries;
    }

    private static byte[] WriteZip(Dictionary<string, byte[]> entries)
    {
        var output = new MemoryStream();
        using (var archive = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, content) in entries)
                using (var s = archive.CreateEntry(name).Open()) s.Write(content);
        return output.ToArray();
    }

    private static double Status(string key)
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    internal sealed class Pair
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
    }

    internal sealed class Prediction
    {
        public float Score { get; set; }
    }

    /// <summary>An exported ONNX file given to the DeepRec transformer path, with the collaborative models' inputs.</summary>
    private sealed class OnnxFileTransformer(MLContext ml, byte[] onnx) : DeepRecTransformerBase(ml, onnx,
        new Dictionary<string, string> { ["user_key"] = "UserKey", ["item_key"] = "ItemKey" }, DeepRecScoreKind.Ranking, null);
}
