using System.IO.Compression;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Serving;

/// <summary>What <see cref="DeepRecRecommender"/> needs, as stored next to the ML.NET model in the zip.</summary>
internal sealed class RecommenderData
{
    public required string Kind { get; init; }
    /// <summary>A sequential model's window length L; 0 for collaborative models.</summary>
    public int MaxLength { get; init; }
    public required KeyCompaction UserKeys { get; init; }
    public required KeyCompaction ItemKeys { get; init; }
    public required KeyVocabulary Vocabulary { get; init; }
    /// <summary>CSR over user rows 0..trained users: the item rows each user interacted with in training.</summary>
    public required int[] SeenOffsets { get; init; }
    public required int[] SeenItems { get; init; }

    public bool IsSequential => SequentialModels.IsSequential(Kind);

    /// <summary>Columns of the graph's score matrix: trained item rows 1..I, or a sequential model's keys 0..I.</summary>
    public int ScoreColumns => IsSequential ? ItemKeys.Count + 1 : ItemKeys.Count;
}

/// <summary>
/// Writes and reads the two zip entries that carry a recommender (<see cref="OnnxEntry"/>: the all-items graph of
/// <see cref="RecommenderGraphs"/>; <see cref="DataEntry"/>: kinds, key maps, vocabularies, seen items). ML.NET's
/// <c>Model.Load</c> opens the entries it wrote by name and never these. The data entry is untrusted input on load: every
/// count is checked against the bytes left before anything is allocated, and a malformed entry gives
/// <see cref="InvalidDataException"/> naming the field.
/// </summary>
internal static class RecommenderStore
{
    public const string OnnxEntry = "MLNet.DeepRec/Recommender/AllItems.onnx";
    public const string DataEntry = "MLNet.DeepRec/Recommender/Data.bin";
    private const int Magic = 0x43455244; // "DREC"
    private const int Version = 1;

    /// <summary>The collaborative or sequential transformer in <paramref name="model"/> (the last one of a chain), or null.</summary>
    public static ITransformer? FindSource(ITransformer model) => model switch
    {
        CollaborativeFilteringTransformer or SequentialTransformer => model,
        IEnumerable<ITransformer> chain => chain.Reverse().Select(FindSource).FirstOrDefault(s => s is not null),
        _ => null,
    };

    /// <summary>Appends the recommender entries for <paramref name="source"/> to the zip in <paramref name="stream"/>.</summary>
    public static void Append(Stream stream, ITransformer source)
    {
        byte[] onnx;
        byte[] data;
        switch (source)
        {
            case CollaborativeFilteringTransformer cf:
                onnx = RecommenderGraphs.Collaborative(cf.Module);
                data = Serialize(cf.ModelName, 0, cf.UserKeys, cf.ItemKeys, cf.Vocabulary, cf.Seen);
                break;
            case SequentialTransformer sequential:
                onnx = RecommenderGraphs.Sequential(sequential.Module);
                data = Serialize(sequential.ModelName, sequential.MaxLength, KeyCompaction.Identity(0), KeyCompaction.Identity(sequential.ItemCount), sequential.Vocabulary, null);
                break;
            default:
                throw new ArgumentException($"{source.GetType().Name} carries no recommender.", nameof(source));
        }
        stream.Position = 0;
        using var zip = new ZipArchive(stream, ZipArchiveMode.Update, leaveOpen: true);
        foreach (var (name, bytes) in new[] { (OnnxEntry, onnx), (DataEntry, data) })
        {
            zip.GetEntry(name)?.Delete();
            using Stream entry = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
            entry.Write(bytes);
        }
    }

    private static byte[] Serialize(string kind, int maxLength, KeyCompaction users, KeyCompaction items, KeyVocabulary vocabulary, UserItemSet? seen)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write(kind);
            w.Write(maxLength);
            foreach (KeyCompaction keys in new[] { users, items })
            {
                w.Write(keys.DeclaredCount);
                w.Write(keys.Count);
                w.Write(keys.OccurringKeys is null ? -1 : keys.OccurringKeys.Count);
                foreach (int key in keys.OccurringKeys ?? []) w.Write(key);
            }
            foreach (IReadOnlyList<string>? ids in new[] { vocabulary.Users, vocabulary.Items })
            {
                w.Write(ids is null ? -1 : ids.Count);
                foreach (string id in ids ?? []) w.Write(id);
            }
            int rows = seen is null ? 0 : users.Count + 1;
            w.Write(rows);
            long total = 0;
            w.Write(0);
            for (int r = 0; r < rows; r++)
            {
                total += r == 0 ? 0 : seen!.ItemsOf(r).Length;
                w.Write(checked((int)total));
            }
            w.Write(checked((int)total));
            for (int r = 1; r < rows; r++)
                foreach (int item in seen!.ItemsOf(r)) w.Write(item);
        }
        return buffer.ToArray();
    }

    /// <summary>Parses and checks a data entry (also used by <see cref="ModelZipInspector"/>).</summary>
    /// <exception cref="InvalidDataException">The entry is malformed; the message names the field.</exception>
    public static RecommenderData Parse(byte[] bytes)
    {
        var r = new Reader(bytes);
        if (r.Int("magic") != Magic) throw new InvalidDataException($"{DataEntry}: not a DeepRec recommender entry (bad magic number).");
        int version = r.Int("version");
        if (version != Version) throw new InvalidDataException($"{DataEntry}: format version {version} is not supported (this library reads version {Version}).");
        string kind = r.String("kind");
        bool sequential = SequentialModels.IsSequential(kind);
        if (!sequential && CollaborativeModels.Find(kind) is null)
            throw new InvalidDataException($"{DataEntry}: unknown model kind '{kind}'.");
        int maxLength = r.Int("max length");
        LoadLimits.CheckRange(maxLength, sequential ? 1 : 0, sequential ? SequentialHistoryWindowMapping.Width : 0, DataEntry, "max length");
        KeyCompaction Keys(string role, int minCount)
        {
            int declared = r.Int($"{role} declared count");
            LoadLimits.CheckRange(declared, minCount, LoadLimits.MaxTableRows, DataEntry, $"{role} declared count");
            int count = r.Int($"{role} trained count");
            LoadLimits.CheckRange(count, minCount, declared, DataEntry, $"{role} trained count");
            int stored = r.Int($"{role} occurring key count");
            if (stored == -1)
            {
                if (count != declared) throw new InvalidDataException($"{DataEntry}: {role} keys: trained count {count} differs from the declared {declared} but no key map is stored.");
                return KeyCompaction.Identity(declared);
            }
            if (stored != count) throw new InvalidDataException($"{DataEntry}: {role} keys: {stored} occurring keys stored for {count} trained rows.");
            int[] keys = r.Ints(stored, $"{role} occurring keys");
            return KeyCompaction.FromStored(declared, keys, DataEntry);
        }
        KeyCompaction users = Keys("user", sequential ? 0 : 1);
        KeyCompaction items = Keys("item", 1);
        IReadOnlyList<string>? Ids(string role, int declared)
        {
            int count = r.Int($"{role} vocabulary size");
            if (count == -1) return null;
            if (count != declared) throw new InvalidDataException($"{DataEntry}: the {role} vocabulary has {count} ids for {declared} keys.");
            r.CheckRemaining(count, 1, $"{role} vocabulary");
            var ids = new string[count];
            for (int n = 0; n < count; n++) ids[n] = r.String($"{role} id {n}");
            return ids;
        }
        var userIds = Ids("user", users.DeclaredCount);
        var itemIds = Ids("item", items.DeclaredCount);
        int rows = r.Int("seen rows");
        if (rows != 0 && rows != users.Count + 1)
            throw new InvalidDataException($"{DataEntry}: seen items are stored for {rows} user rows; the model has {users.Count + 1}.");
        int[] offsets = r.Ints(rows + 1, "seen offsets");
        int total = r.Int("seen item count");
        if (offsets[0] != 0 || offsets[^1] != total)
            throw new InvalidDataException($"{DataEntry}: the seen offsets do not span the {total} stored seen items.");
        for (int n = 1; n < offsets.Length; n++)
            if (offsets[n] < offsets[n - 1]) throw new InvalidDataException($"{DataEntry}: the seen offsets decrease at user row {n - 1}.");
        int[] seen = r.Ints(total, "seen items");
        foreach (int item in seen)
            if (item < 1 || item > items.Count) throw new InvalidDataException($"{DataEntry}: seen item row {item} is outside 1..{items.Count}.");
        if (!r.AtEnd) throw new InvalidDataException($"{DataEntry}: {bytes.Length - r.Offset:N0} bytes follow the data.");
        return new RecommenderData
        {
            Kind = kind, MaxLength = maxLength, UserKeys = users, ItemKeys = items,
            Vocabulary = new KeyVocabulary(userIds, itemIds), SeenOffsets = offsets, SeenItems = seen,
        };
    }

    /// <summary>The graph must be the all-items graph of <paramref name="data"/>: its inputs and outputs are checked.</summary>
    public static void CheckGraph(OnnxModelSummary summary, RecommenderData data)
    {
        string input = data.IsSequential ? RecommenderGraphs.SequenceInput : RecommenderGraphs.UserRowsInput;
        if (summary.Inputs.Count != 1 || summary.Inputs[0].Name != input || summary.Inputs[0].ElementType != OnnxElementType.Int64)
            throw new InvalidDataException($"{OnnxEntry}: the graph must take one int64 input '{input}'; it takes [{string.Join(", ", summary.InputNames)}].");
        var output = summary.Outputs.FirstOrDefault(o => o.Name == RecommenderGraphs.ScoresOutput);
        if (output is null || output.ElementType != OnnxElementType.Float || output.Dims.Count != 2 || output.Dims[1] != data.ScoreColumns)
            throw new InvalidDataException($"{OnnxEntry}: the graph must output float '{RecommenderGraphs.ScoresOutput}' [-1, {data.ScoreColumns}].");
        if (data.IsSequential && (summary.Inputs[0].Dims.Count != 2 || summary.Inputs[0].Dims[1] != data.MaxLength))
            throw new InvalidDataException($"{OnnxEntry}: the sequence input must be [-1, {data.MaxLength}].");
    }

    /// <summary>Bounds-checked little-endian reads.</summary>
    private sealed class Reader(byte[] bytes)
    {
        public int Offset { get; private set; }

        public bool AtEnd => Offset == bytes.Length;

        public void CheckRemaining(long count, int bytesEach, string field)
        {
            if (count < 0 || count * bytesEach > bytes.Length - Offset)
                throw new InvalidDataException($"{DataEntry}: {field}: {count:N0} values do not fit in the {bytes.Length - Offset:N0} bytes left.");
        }

        public int Int(string field)
        {
            CheckRemaining(1, 4, field);
            int v = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(Offset));
            Offset += 4;
            return v;
        }

        public int[] Ints(int count, string field)
        {
            CheckRemaining(count, 4, field);
            var v = new int[count];
            Buffer.BlockCopy(bytes, Offset, v, 0, count * 4);
            Offset += count * 4;
            return v;
        }

        public string String(string field)
        {
            // BinaryWriter's format: a 7-bit encoded byte length, then UTF-8.
            int length = 0, shift = 0;
            while (true)
            {
                CheckRemaining(1, 1, field);
                byte b = bytes[Offset++];
                length |= (b & 0x7F) << shift;
                if ((b & 0x80) == 0) break;
                shift += 7;
                if (shift > 28) throw new InvalidDataException($"{DataEntry}: {field}: bad string length.");
            }
            CheckRemaining(length, 1, field);
            try
            {
                string s = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, Offset, length);
                Offset += length;
                return s;
            }
            catch (DecoderFallbackException e)
            {
                throw new InvalidDataException($"{DataEntry}: {field} is not valid UTF-8.", e);
            }
        }
    }
}
