using System.IO.Compression;
using System.Reflection;
using System.Text.Json;
using Microsoft.ML;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Serving;
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
        /// <summary>What the model predicts: "Regression" for a model trained on ratings (squared error); absent or
        /// "BinaryClassification" for implicit feedback (checkpoints written before ratings existed).</summary>
        public string? ScoreKind { get; set; }
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
            ScoreKind = model.ScoreKind == DeepRecScoreKind.Regression ? nameof(DeepRecScoreKind.Regression) : null,
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

    /// <summary>
    /// Reads a checkpoint that may be hostile: the manifest is checked against <see cref="LoadLimits"/> and against
    /// the names and shapes of the stored tensors (read first, values skipped), and the memory the load needs is
    /// estimated, all before any network or large array is allocated. Only <see cref="InvalidDataException"/>,
    /// <see cref="IOException"/> and <see cref="ArgumentException"/> come out.
    /// </summary>
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
            Manifest manifest = ReadManifest(zip, what);
            if (manifest.Format != FormatName)
                throw new InvalidDataException($"{what} is a '{manifest.Format}' file, not a collaborative-model checkpoint.");
            if (manifest.FormatVersion is < 1 or > FormatVersion)
                throw new InvalidDataException($"{what} has format version {manifest.FormatVersion}; this library (version {typeof(CollaborativeCheckpoint).Assembly.GetName().Version}) reads versions 1 to {FormatVersion}.");
            if (string.IsNullOrEmpty(manifest.UserColumn) || string.IsNullOrEmpty(manifest.ItemColumn))
                throw new InvalidDataException($"{what}: the manifest's UserColumn and ItemColumn must name columns.");
            var scoreKind = manifest.ScoreKind switch
            {
                null or nameof(DeepRecScoreKind.BinaryClassification) => DeepRecScoreKind.BinaryClassification,
                nameof(DeepRecScoreKind.Regression) => DeepRecScoreKind.Regression,
                _ => throw new InvalidDataException($"{what}: ScoreKind '{manifest.ScoreKind}' is not one this library writes (Regression or BinaryClassification)."),
            };
            if (manifest.OptimizerStep < 0)
                throw new InvalidDataException($"{what}: OptimizerStep = {manifest.OptimizerStep} is negative.");
            // Checks UserCount, ItemCount and every hyper-parameter against the limits, and gives the parameters a
            // network of these sizes has, without building it.
            var kind = CollaborativeModels.Get(manifest.ModelKind, what);
            var specs = kind.Describe(manifest.UserCount, manifest.ItemCount,
                manifest.HyperParameters ?? throw new InvalidDataException($"{what}: the manifest has no HyperParameters."), what);
            int declaredUsers = manifest.FormatVersion >= 2 ? manifest.DeclaredUserCount : manifest.UserCount;
            int declaredItems = manifest.FormatVersion >= 2 ? manifest.DeclaredItemCount : manifest.ItemCount;
            LoadLimits.CheckRange(declaredUsers, manifest.UserCount, LoadLimits.MaxTableRows, what, "DeclaredUserCount");
            LoadLimits.CheckRange(declaredItems, manifest.ItemCount, LoadLimits.MaxTableRows, what, "DeclaredItemCount");
            CheckVocabulary(manifest.Users, declaredUsers, what, "Users", "DeclaredUserCount");
            CheckVocabulary(manifest.Items, declaredItems, what, "Items", "DeclaredItemCount");

            // The stored shapes must be exactly those of the manifest's network. Reading them walks the whole entry, so
            // a shape whose values are not in the file fails here as "truncated", before anything of its size exists.
            List<TensorArchive.Header> weights;
            using (var s = Entry(zip, WeightsEntry, what).Open()) weights = TensorArchive.ReadHeaders(s, what + " (weights)");
            CheckWeights(specs, weights, manifest, what);
            long parameters = specs.Sum(p => p.Elements);
            long moments = 0;
            if (zip.GetEntry(OptimizerEntry) is ZipArchiveEntry optimizerEntry)
            {
                List<TensorArchive.Header> headers;
                using (var s = optimizerEntry.Open()) headers = TensorArchive.ReadHeaders(s, what + " (optimizer state)");
                moments = CheckMoments(headers, parameters, what);
            }
            int pairs;
            using (var s = Entry(zip, SeenEntry, what).Open()) pairs = ReadSeenCount(s, manifest.UserCount, manifest.ItemCount, what);

            // What the load allocates: the network, the per-key maps, Adam's two moments and the seen pairs (with the
            // set built from them), plus the ONNX graph the transformer exports from the weights (about their size).
            long estimate = 2 * parameters * sizeof(float) + 2 * moments * sizeof(float) + 3L * pairs * 2 * sizeof(int)
                + 2 * (manifest.UserCount + (long)manifest.ItemCount + 2) * sizeof(long);
            LoadLimits.CheckMemory(estimate, what, $"UserCount = {manifest.UserCount}, ItemCount = {manifest.ItemCount}, " +
                $"{string.Join(", ", manifest.HyperParameters.Select(p => $"{p.Key} = [{string.Join(",", p.Value ?? [])}]"))}, {moments} optimizer moments, {pairs} seen interactions");

            KeyCompaction userKeys = KeyCompaction.Identity(declaredUsers), itemKeys = KeyCompaction.Identity(declaredItems);
            if (manifest.FormatVersion >= 2)
            {
                using var s = Entry(zip, KeysEntry, what).Open();
                (userKeys, itemKeys) = ReadKeys(s, declaredUsers, manifest.UserCount, declaredItems, manifest.ItemCount, what);
            }

            var module = kind.Create(manifest.UserCount, manifest.ItemCount, manifest.HyperParameters);
            OptimizerState? state = null;
            try
            {
                using (no_grad())
                {
                    var parametersByName = module.state_dict();
                    using var s = Entry(zip, WeightsEntry, what).Open();
                    TensorArchive.ReadInto(s, what + " (weights)", h => parametersByName.TryGetValue(h.Name, out var target)
                        ? target : throw new InvalidDataException($"{what} changed while it was read (weights '{h.Name}')."));
                }
                if (zip.GetEntry(OptimizerEntry) is not null)
                {
                    state = new OptimizerState(manifest.OptimizerStep, zeros(moments), zeros(moments));
                    using var s = Entry(zip, OptimizerEntry, what).Open();
                    TensorArchive.ReadInto(s, what + " (optimizer state)", h => h.Name switch
                    {
                        "exp_avg" => state.FirstMoment,
                        "exp_avg_sq" => state.SecondMoment,
                        _ => null,
                    });
                }
                UserItemSet seen;
                using (var s = Entry(zip, SeenEntry, what).Open()) seen = ReadSeen(s, manifest.UserCount, manifest.ItemCount, what);
                module.eval();
                return new CollaborativeFilteringTransformer(mlContext, manifest.ModelKind, module, CPU, manifest.UserColumn, manifest.ItemColumn,
                    seen, new KeyVocabulary(manifest.Users, manifest.Items), new TrainingReport(Array.Empty<EpochReport>(), null, null, 0), state, userKeys, itemKeys, scoreKind);
            }
            catch
            {
                state?.Dispose();
                module.Dispose();
                throw;
            }
        }
    }

    private static Manifest ReadManifest(ZipArchive zip, string what)
    {
        var entry = Entry(zip, ManifestEntry, what);
        // JSON text becomes UTF-16 strings and objects: a few times its size.
        LoadLimits.CheckRange(entry.Length, 0, LoadLimits.MaxManifestBytes, what, "the size of manifest.json");
        LoadLimits.CheckMemory(entry.Length * 6, what, $"a manifest of {entry.Length:N0} bytes");
        try
        {
            using var s = new BoundedReadStream(entry.Open(), entry.Length, what + " (manifest.json)");
            return JsonSerializer.Deserialize<Manifest>(s) ?? throw new InvalidDataException($"{what} has an empty manifest.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{what} has a corrupted manifest: {e.Message}", e); }
    }

    private static void CheckVocabulary(string[]? ids, int declared, string what, string field, string countField)
    {
        if (ids is null) return;
        if (ids.Length != declared)
            throw new InvalidDataException($"{what}: the key vocabulary '{field}' has {ids.Length} ids for {countField} = {declared} keys.");
        if (Array.IndexOf(ids, null) is int at and >= 0)
            throw new InvalidDataException($"{what}: the key vocabulary '{field}' has no id at index {at}.");
    }

    /// <summary>The stored weights must be exactly the network's parameters; the message names the manifest fields a
    /// shape follows from, since those are what a mismatch usually means is wrong.</summary>
    private static void CheckWeights(IReadOnlyList<ParameterSpec> specs, List<TensorArchive.Header> stored, Manifest manifest, string what)
    {
        var byName = stored.ToDictionary(h => h.Name, StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            if (!byName.TryGetValue(spec.Name, out var saved))
                throw new InvalidDataException($"{what} lacks the weights '{spec.Name}' of a {manifest.ModelKind} model.");
            if (!saved.Shape.SequenceEqual(spec.Shape))
                throw new InvalidDataException($"{what}: the manifest ({spec.Origin}) needs weights '{spec.Name}' of shape [{string.Join(",", spec.Shape)}], " +
                    $"but the file stores {saved.ShapeText}.");
        }
        var extra = stored.Select(h => h.Name).Except(specs.Select(p => p.Name)).FirstOrDefault();
        if (extra != null) throw new InvalidDataException($"{what} has weights '{extra}' that a {manifest.ModelKind} model does not have.");
    }

    /// <summary>Adam's first and second moments: two flat tensors of the same length, at most one value per parameter.</summary>
    private static long CheckMoments(List<TensorArchive.Header> headers, long parameters, string what)
    {
        var first = headers.FirstOrDefault(h => h.Name == "exp_avg");
        var second = headers.FirstOrDefault(h => h.Name == "exp_avg_sq");
        if (first is null || second is null || headers.Count != 2)
            throw new InvalidDataException($"{what} has an incomplete optimizer state (it needs exactly 'exp_avg' and 'exp_avg_sq').");
        if (first.Shape.Length != 1 || !first.Shape.SequenceEqual(second.Shape) || first.Elements > parameters)
            throw new InvalidDataException($"{what}: the optimizer moments have shapes {first.ShapeText} and {second.ShapeText}; " +
                $"they must be equal flat vectors of at most the model's {parameters} parameters.");
        return first.Elements;
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

    private static int ReadSeenCount(Stream stream, int userCount, int itemCount, string what)
    {
        try
        {
            using var r = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            int count = r.ReadInt32();
            if (count < 0 || count > (long)userCount * itemCount)
                throw new InvalidDataException($"{what}: the interaction list declares {count} pairs for {userCount} users × {itemCount} items.");
            return count;
        }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{what} is truncated.", e); }
    }

    private static UserItemSet ReadSeen(Stream stream, int userCount, int itemCount, string what)
    {
        try
        {
            using var r = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            int count = r.ReadInt32();
            if (count < 0 || count > (long)userCount * itemCount)
                throw new InvalidDataException($"{what}: the interaction list declares {count} pairs for {userCount} users × {itemCount} items.");
            // Grown as pairs arrive, so a count the entry does not back allocates no more than the entry holds.
            var users = new int[Math.Min(count, 1 << 16)];
            var items = new int[users.Length];
            for (int n = 0; n < count; n++)
            {
                if (n == users.Length)
                {
                    int grown = (int)Math.Min(count, 2L * users.Length);
                    Array.Resize(ref users, grown);
                    Array.Resize(ref items, grown);
                }
                users[n] = r.ReadInt32(); items[n] = r.ReadInt32();
                if (users[n] < 0 || users[n] > userCount || items[n] < 0 || items[n] > itemCount)
                    throw new InvalidDataException($"{what} has an interaction ({users[n]}, {items[n]}) with keys outside the vocabulary (UserCount = {userCount}, ItemCount = {itemCount}).");
            }
            return new UserItemSet(users, items, userCount, itemCount);
        }
        catch (EndOfStreamException e) { throw new InvalidDataException($"{what} is truncated.", e); }
    }
}
