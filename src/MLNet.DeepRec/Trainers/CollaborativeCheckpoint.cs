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
/// Adam moments, the training interactions used to exclude seen items (in row space) and, from format version 2, the
/// declared keys that have rows (<see cref="KeyCompaction"/>). Written to a temporary file and moved
/// into place, so an existing file is replaced only by a complete checkpoint.
/// </summary>
internal static class CollaborativeCheckpoint
{
    internal const string FormatName = "MLNet.DeepRec.CollaborativeCheckpoint";
    internal const int FormatVersion = 2;
    private const string ManifestEntry = "manifest.json", WeightsEntry = "weights.bin", OptimizerEntry = "optimizer.bin", SeenEntry = "seen.bin", KeysEntry = "keys.bin";

    private sealed class Manifest
    {
        public string Format { get; set; } = "";
        public int FormatVersion { get; set; }
        public string LibraryVersion { get; set; } = "";
        public string ModelKind { get; set; } = "";
        /// <summary>Rows of the user table besides row 0 (users that occurred in training).</summary>
        public int UserCount { get; set; }
        /// <summary>Rows of the item table besides row 0.</summary>
        public int ItemCount { get; set; }
        /// <summary>Cardinality of the user key type (version 2; 0 in version 1, where it equals UserCount).</summary>
        public int DeclaredUserCount { get; set; }
        /// <summary>Cardinality of the item key type (version 2).</summary>
        public int DeclaredItemCount { get; set; }
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
            DeclaredUserCount = model.UserKeys.DeclaredCount,
            DeclaredItemCount = model.ItemKeys.DeclaredCount,
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
                using (var s = zip.CreateEntry(KeysEntry).Open()) WriteKeys(s, model.UserKeys, model.ItemKeys);
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
            if (manifest.FormatVersion is < 1 or > FormatVersion)
                throw new InvalidDataException($"{what} has format version {manifest.FormatVersion}; this library (version {typeof(CollaborativeCheckpoint).Assembly.GetName().Version}) reads versions 1 to {FormatVersion}.");
            if (manifest.UserCount <= 0 || manifest.ItemCount <= 0)
                throw new InvalidDataException($"{what} declares {manifest.UserCount} users and {manifest.ItemCount} items.");
            int declaredUsers = manifest.FormatVersion >= 2 ? manifest.DeclaredUserCount : manifest.UserCount;
            int declaredItems = manifest.FormatVersion >= 2 ? manifest.DeclaredItemCount : manifest.ItemCount;
            if (declaredUsers < manifest.UserCount || declaredItems < manifest.ItemCount)
                throw new InvalidDataException($"{what} declares {declaredUsers} user and {declaredItems} item keys but {manifest.UserCount} and {manifest.ItemCount} rows.");
            if (manifest.Users != null && manifest.Users.Length != declaredUsers || manifest.Items != null && manifest.Items.Length != declaredItems)
                throw new InvalidDataException($"{what}: the key vocabulary does not match the declared key counts.");
            KeyCompaction userKeys = KeyCompaction.Identity(declaredUsers), itemKeys = KeyCompaction.Identity(declaredItems);
            if (manifest.FormatVersion >= 2)
            {
                using var s = Entry(zip, KeysEntry, what).Open();
                (userKeys, itemKeys) = ReadKeys(s, declaredUsers, manifest.UserCount, declaredItems, manifest.ItemCount, what);
            }

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
                    seen, new KeyVocabulary(manifest.Users, manifest.Items), new TrainingReport(Array.Empty<EpochReport>(), null, null, 0), state, userKeys, itemKeys);
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

    private static void WriteKeys(Stream stream, KeyCompaction users, KeyCompaction items)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        foreach (var map in new[] { users, items })
        {
            // -1: the identity (every declared key has its row); otherwise the count, then the occurring keys ascending.
            var keys = map.OccurringKeys;
            w.Write(keys is null ? -1 : keys.Count);
            if (keys != null) foreach (int key in keys) w.Write(key);
        }
    }

    private static (KeyCompaction Users, KeyCompaction Items) ReadKeys(Stream stream, int declaredUsers, int userRows, int declaredItems, int itemRows, string what)
    {
        try
        {
            using var r = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            KeyCompaction Read(int declared, int rows, string role)
            {
                int count = r.ReadInt32();
                if (count == -1)
                {
                    if (rows != declared) throw new InvalidDataException($"{what}: the {role} table has {rows} rows for {declared} declared keys but no key map.");
                    return KeyCompaction.Identity(declared);
                }
                if (count != rows) throw new InvalidDataException($"{what}: the {role} key map has {count} keys for {rows} rows.");
                var keys = new int[count];
                for (int n = 0; n < count; n++) keys[n] = r.ReadInt32();
                return KeyCompaction.FromStored(declared, keys, what);
            }
            return (Read(declaredUsers, userRows, "user"), Read(declaredItems, itemRows, "item"));
        }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{what} is truncated.", e); }
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
