using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Training;
using static TorchSharp.torch;

namespace MLNet.DeepRec.Trainers;

/// <summary>
/// The TorchSharp-side checkpoint of a collaborative model, for continued training: a zip holding a JSON manifest
/// (format version, model kind, hyper-parameters, key counts, column names, key vocabularies), the weights, the
/// Adam moments and the training interactions used to exclude seen items. Written to a temporary file and moved
/// into place, so an existing file is replaced only by a complete checkpoint.
/// </summary>
internal static class CollaborativeCheckpoint
{
    internal const string FormatName = "MLNet.DeepRec.CollaborativeCheckpoint";
    internal const int FormatVersion = 1;
    private const string ManifestEntry = "manifest.json", WeightsEntry = "weights.bin", OptimizerEntry = "optimizer.bin", SeenEntry = "seen.bin";

    private sealed class Manifest
    {
        public string Format { get; set; } = "";
        public int FormatVersion { get; set; }
        public string LibraryVersion { get; set; } = "";
        public string ModelKind { get; set; } = "";
        public int UserCount { get; set; }
        public int ItemCount { get; set; }
        public string UserColumn { get; set; } = "";
        public string ItemColumn { get; set; } = "";
        public Dictionary<string, int[]> HyperParameters { get; set; } = new();
        public string[]? Users { get; set; }
        public string[]? Items { get; set; }
        public long OptimizerStep { get; set; }
    }

    public static void Save(CollaborativeFilteringTransformer model, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var module = model.Module;
        var manifest = new Manifest
        {
            Format = FormatName,
            FormatVersion = FormatVersion,
            LibraryVersion = typeof(CollaborativeCheckpoint).Assembly.GetName().Version?.ToString() ?? "",
            ModelKind = module.Kind,
            UserCount = module.UserCount,
            ItemCount = module.ItemCount,
            UserColumn = model.UserColumnName,
            ItemColumn = model.ItemColumnName,
            HyperParameters = module.HyperParameters.ToDictionary(p => p.Key, p => p.Value),
            Users = model.Vocabulary.Users?.ToArray(),
            Items = model.Vocabulary.Items?.ToArray(),
            OptimizerStep = model.OptimizerState?.Step ?? 0,
        };
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = File.Create(temporary))
            using (var zip = new ZipArchive(file, ZipArchiveMode.Create))
            {
                using (var s = zip.CreateEntry(ManifestEntry).Open()) JsonSerializer.Serialize(s, manifest);
                using (var s = zip.CreateEntry(WeightsEntry).Open()) TensorArchive.Write(s, module.state_dict().Select(p => (p.Key, p.Value)));
                if (model.OptimizerState is OptimizerState state)
                    using (var s = zip.CreateEntry(OptimizerEntry).Open())
                        TensorArchive.Write(s, new[] { ("exp_avg", state.FirstMoment), ("exp_avg_sq", state.SecondMoment) });
                using (var s = zip.CreateEntry(SeenEntry).Open()) WriteSeen(s, model.Seen);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    public static CollaborativeFilteringTransformer Load(MLContext mlContext, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string what = $"The checkpoint '{path}'";
        ZipArchive zip;
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try { zip = new ZipArchive(file, ZipArchiveMode.Read); }
        catch (InvalidDataException e) { file.Dispose(); throw new InvalidDataException($"{what} is not a valid checkpoint (not a readable zip archive).", e); }
        using (file)
        using (zip)
        {
            Manifest manifest;
            try
            {
                using var s = Entry(zip, ManifestEntry, what).Open();
                manifest = JsonSerializer.Deserialize<Manifest>(s) ?? throw new InvalidDataException($"{what} has an empty manifest.");
            }
            catch (JsonException e) { throw new InvalidDataException($"{what} has a corrupted manifest.", e); }
            if (manifest.Format != FormatName)
                throw new InvalidDataException($"{what} is a '{manifest.Format}' file, not a collaborative-model checkpoint.");
            if (manifest.FormatVersion != FormatVersion)
                throw new InvalidDataException($"{what} has format version {manifest.FormatVersion}; this library (version {typeof(CollaborativeCheckpoint).Assembly.GetName().Version}) reads version {FormatVersion}.");
            if (manifest.UserCount <= 0 || manifest.ItemCount <= 0)
                throw new InvalidDataException($"{what} declares {manifest.UserCount} users and {manifest.ItemCount} items.");
            if (manifest.Users != null && manifest.Users.Length != manifest.UserCount || manifest.Items != null && manifest.Items.Length != manifest.ItemCount)
                throw new InvalidDataException($"{what}: the key vocabulary does not match the declared key counts.");

            var module = CollaborativeModule.Create(manifest.ModelKind, manifest.UserCount, manifest.ItemCount, manifest.HyperParameters);
            try
            {
                Dictionary<string, (long[] Shape, float[] Values)> weights;
                using (var s = Entry(zip, WeightsEntry, what).Open()) weights = TensorArchive.Read(s, what + " (weights)");
                using (no_grad())
                {
                    var expected = module.state_dict();
                    foreach (var (name, tensor) in expected)
                    {
                        if (!weights.TryGetValue(name, out var saved))
                            throw new InvalidDataException($"{what} lacks the weights '{name}' of a {manifest.ModelKind} model.");
                        if (!saved.Shape.SequenceEqual(tensor.shape))
                            throw new InvalidDataException($"{what}: weights '{name}' have shape [{string.Join(",", saved.Shape)}], the model expects [{string.Join(",", tensor.shape)}].");
                        using var t = TorchSharp.torch.tensor(saved.Values, saved.Shape);
                        tensor.copy_(t);
                    }
                    var extra = weights.Keys.Except(expected.Keys).FirstOrDefault();
                    if (extra != null) throw new InvalidDataException($"{what} has weights '{extra}' that a {manifest.ModelKind} model does not have.");
                }
                OptimizerState? state = null;
                if (zip.GetEntry(OptimizerEntry) is ZipArchiveEntry optimizerEntry)
                {
                    using var s = optimizerEntry.Open();
                    var moments = TensorArchive.Read(s, what + " (optimizer state)");
                    if (!moments.TryGetValue("exp_avg", out var m) || !moments.TryGetValue("exp_avg_sq", out var v))
                        throw new InvalidDataException($"{what} has an incomplete optimizer state.");
                    state = new OptimizerState(manifest.OptimizerStep, TorchSharp.torch.tensor(m.Values, m.Shape), TorchSharp.torch.tensor(v.Values, v.Shape));
                }
                UserItemSet seen;
                using (var s = Entry(zip, SeenEntry, what).Open()) seen = ReadSeen(s, manifest.UserCount, manifest.ItemCount, what);
                module.eval();
                return new CollaborativeFilteringTransformer(mlContext, manifest.ModelKind, module, CPU, manifest.UserColumn, manifest.ItemColumn,
                    seen, new KeyVocabulary(manifest.Users, manifest.Items), new TrainingReport(Array.Empty<EpochReport>(), null, null, 0), state);
            }
            catch
            {
                module.Dispose();
                throw;
            }
        }
    }

    private static ZipArchiveEntry Entry(ZipArchive zip, string name, string what) =>
        zip.GetEntry(name) ?? throw new InvalidDataException($"{what} is not a valid checkpoint (no '{name}' entry).");

    private static void WriteSeen(Stream stream, UserItemSet seen)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        w.Write(seen.PairCount);
        for (int u = 0; u <= seen.UserCount; u++)
            foreach (int item in seen.ItemsOf(u)) { w.Write(u); w.Write(item); }
    }

    private static UserItemSet ReadSeen(Stream stream, int userCount, int itemCount, string what)
    {
        try
        {
            using var r = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            int count = r.ReadInt32();
            if (count < 0) throw new InvalidDataException($"{what} has a corrupted interaction list.");
            var users = new int[count];
            var items = new int[count];
            for (int n = 0; n < count; n++)
            {
                users[n] = r.ReadInt32(); items[n] = r.ReadInt32();
                if (users[n] < 0 || users[n] > userCount || items[n] < 0 || items[n] > itemCount)
                    throw new InvalidDataException($"{what} has an interaction with keys outside the vocabulary.");
            }
            return new UserItemSet(users, items, userCount, itemCount);
        }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{what} is truncated.", e); }
    }
}
