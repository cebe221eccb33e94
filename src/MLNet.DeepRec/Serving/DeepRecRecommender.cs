using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNet.DeepRec.Data;
using MLNet.DeepRec.Models;
using MLNet.DeepRec.Trainers;

namespace MLNet.DeepRec.Serving;

/// <summary>
/// Top-K recommendations from a saved model, with ONNX Runtime alone (no TorchSharp, no libtorch): what the in-memory
/// transformers' <c>Recommend</c> methods return, for a scoring service that loads the model zip. Get one with
/// <see cref="DeepRecServing.LoadRecommender(MLContext, string)"/> from a zip written by
/// <see cref="DeepRecServing.SaveModel"/> whose model holds a collaborative transformer (MF, GMF, MLP, NeuMF) or a
/// <see cref="SequentialTransformer"/> (SASRec, GRU4Rec). Thread-safe; dispose it to release the ONNX Runtime session.
/// </summary>
/// <remarks>
/// <para>Results equal the in-memory transformer's (<see cref="CollaborativeFilteringTransformer.Recommend(string, int, bool, IEnumerable{string}?)"/>,
/// <see cref="SequentialTransformer.Recommend(IEnumerable{string}, int, bool)"/>): the same items in the same order, with scores
/// equal up to float rounding (the graphs factor the computation differently; within 1e-5 in the tests). The same rules
/// apply: an unknown user id gets the average user's list (and has no seen items); only items that occurred in training
/// are ranked; candidate ids that are unknown are ignored; fewer than k items come back when fewer are eligible.</para>
/// <para>Users are scored in chunks against the whole catalogue, with a bounded score matrix (about 2M scores for MF and
/// GMF, 256K user-item pairs for the MLP towers) and a per-user running top-k, so memory stays bounded for catalogues of
/// millions of items.</para>
/// </remarks>
public sealed class DeepRecRecommender : IDisposable
{
    private const long ScoresPerChunk = 1L << 21;
    private const long PairsPerTowerChunk = 1L << 18;
    private readonly RecommenderData _data;
    private readonly InferenceSession _session;
    private int _disposed;

    internal DeepRecRecommender(RecommenderData data, InferenceSession session)
    {
        _data = data;
        _session = session;
    }

    /// <summary>"MF", "GMF", "MLP", "NeuMF", "SASRec" or "GRU4Rec".</summary>
    public string ModelKind => _data.Kind;

    /// <summary>True for the sequential models (SASRec, GRU4Rec), which recommend from a history of items (<see cref="RecommendFromHistory"/>) rather than
    /// for a user id.</summary>
    public bool IsSequential => _data.IsSequential;

    /// <summary>Original user and item ids behind the keys, as saved with the model.</summary>
    public KeyVocabulary Vocabulary => _data.Vocabulary;

    /// <summary>Number of items ranked (those that occurred in training).</summary>
    public int RankedItemCount => _data.ItemKeys.Count;

    /// <summary>
    /// Top-<paramref name="k"/> items for a user id as it appeared before <c>MapValueToKey</c>; an unknown id gets the
    /// average user's list. Items the user interacted with in training are left out when <paramref name="excludeSeen"/>;
    /// <paramref name="candidateItemIds"/> restricts the ranking to those items (unknown ids are ignored).
    /// </summary>
    /// <exception cref="InvalidOperationException">The model is sequential (SASRec, GRU4Rec), or was trained without user/item ids (KeyValues).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not positive.</exception>
    public IReadOnlyList<Recommendation> Recommend(string userId, int k, bool excludeSeen = true, IEnumerable<string>? candidateItemIds = null)
    {
        ArgumentNullException.ThrowIfNull(userId);
        return Recommend([userId], k, excludeSeen, candidateItemIds)[0];
    }

    /// <summary>Top-<paramref name="k"/> items for each of many user ids, scored in batches; see
    /// <see cref="Recommend(string, int, bool, IEnumerable{string}?)"/>.</summary>
    /// <exception cref="InvalidOperationException">The model is sequential (SASRec, GRU4Rec), or was trained without user/item ids (KeyValues).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not positive.</exception>
    public IReadOnlyList<IReadOnlyList<Recommendation>> Recommend(IReadOnlyList<string> userIds, int k, bool excludeSeen = true, IEnumerable<string>? candidateItemIds = null)
    {
        ArgumentNullException.ThrowIfNull(userIds);
        if (IsSequential) throw new InvalidOperationException($"A {ModelKind} model recommends from a history of items: call RecommendFromHistory.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        var rows = new long[userIds.Count];
        for (int n = 0; n < rows.Length; n++)
        {
            string id = userIds[n] ?? throw new ArgumentException($"User id {n} is null.", nameof(userIds));
            uint key = _data.Vocabulary.UserKey(id);
            rows[n] = _data.UserKeys.ToRow(key > int.MaxValue ? 0 : (int)key);
        }
        bool[]? allowed = CandidateColumns(candidateItemIds);
        int columns = _data.ScoreColumns;
        long perChunk = CollaborativeModels.Find(_data.Kind) is { ScoresPairsThroughATower: true } ? PairsPerTowerChunk : ScoresPerChunk;
        int chunk = (int)Math.Clamp(perChunk / columns, 1, 1024);
        var results = new IReadOnlyList<Recommendation>[rows.Length];
        for (int start = 0; start < rows.Length; start += chunk)
        {
            int count = Math.Min(chunk, rows.Length - start);
            long[] batch = rows.AsSpan(start, count).ToArray();
            Score(batch, [count], (scores, n) =>
            {
                long row = batch[n];
                if (excludeSeen && row > 0)
                    foreach (int item in _data.SeenItems.AsSpan(_data.SeenOffsets[row], _data.SeenOffsets[row + 1] - _data.SeenOffsets[row]))
                        scores[item - 1] = float.NegativeInfinity;
                results[start + n] = Select(scores, allowed, k, column => (uint)_data.ItemKeys.ToKey(column + 1));
            });
        }
        return results;
    }

    /// <summary>
    /// Sequential models: the top-<paramref name="k"/> next items after a history of original item ids (oldest first). Unknown ids
    /// keep their position but are masked, as in the in-memory model; the history's items are left out when
    /// <paramref name="excludeHistory"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model is not sequential, or was trained without item ids (KeyValues).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not positive.</exception>
    public IReadOnlyList<Recommendation> RecommendFromHistory(IEnumerable<string> historyItemIds, int k, bool excludeHistory = true)
    {
        ArgumentNullException.ThrowIfNull(historyItemIds);
        return RecommendFromHistories([historyItemIds.ToArray()], k, excludeHistory)[0];
    }

    /// <summary>Sequential models: <see cref="RecommendFromHistory"/> for many histories, scored in batches.</summary>
    /// <exception cref="InvalidOperationException">The model is not sequential, or was trained without item ids (KeyValues).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not positive.</exception>
    public IReadOnlyList<IReadOnlyList<Recommendation>> RecommendFromHistories(IReadOnlyList<IReadOnlyList<string>> histories, int k, bool excludeHistory = true)
    {
        ArgumentNullException.ThrowIfNull(histories);
        if (!IsSequential) throw new InvalidOperationException($"A {ModelKind} model recommends for a user id: call Recommend.");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        int items = _data.ItemKeys.Count, l = _data.MaxLength;
        int chunk = (int)Math.Clamp(ScoresPerChunk / _data.ScoreColumns, 1, 256);
        var results = new IReadOnlyList<Recommendation>[histories.Count];
        for (int start = 0; start < histories.Count; start += chunk)
        {
            int count = Math.Min(chunk, histories.Count - start);
            var known = new int[count][];
            var sequences = new long[count * l];
            for (int n = 0; n < count; n++)
            {
                var history = histories[start + n] ?? throw new ArgumentException($"History {start + n} is null.", nameof(histories));
                known[n] = history.Select(id => { uint key = _data.Vocabulary.ItemKey(id); return key > items ? 0 : (int)key; }).ToArray();
                UserSequences.WriteTail(known[n], sequences.AsSpan(n * l, l));
            }
            Score(sequences, [count, l], (scores, n) =>
            {
                scores[0] = float.NegativeInfinity;
                if (excludeHistory)
                    foreach (int item in known[n]) scores[item] = float.NegativeInfinity;
                results[start + n] = Select(scores, null, k, column => (uint)column);
            });
        }
        return results;
    }

    /// <summary>Runs the graph on one chunk and hands each row's scores (mutable) to <paramref name="perRow"/>.</summary>
    private void Score(long[] input, long[] shape, ScoreRow perRow)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        string name = IsSequential ? RecommenderGraphs.SequenceInput : RecommenderGraphs.UserRowsInput;
        using OrtValue value = OrtValue.CreateTensorValueFromMemory(input, shape);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [name], [value], [RecommenderGraphs.ScoresOutput]);
        Span<float> all = outputs[0].GetTensorMutableDataAsSpan<float>();
        int columns = _data.ScoreColumns;
        if (all.Length != (long)shape[0] * columns)
            throw new InvalidOperationException($"The all-items graph returned {all.Length:N0} scores for {shape[0]:N0} users of {columns:N0} columns.");
        for (int n = 0; n < shape[0]; n++)
            perRow(all.Slice(n * columns, columns), n);
    }

    private delegate void ScoreRow(Span<float> scores, int row);

    /// <summary>Score columns the candidate ids allow (null: all).</summary>
    private bool[]? CandidateColumns(IEnumerable<string>? candidateItemIds)
    {
        if (candidateItemIds is null) return null;
        var allowed = new bool[_data.ScoreColumns];
        foreach (string id in candidateItemIds)
        {
            uint key = _data.Vocabulary.ItemKey(id);
            int row = key == 0 || key > int.MaxValue ? 0 : _data.ItemKeys.ToRow((int)key);
            if (row != 0) allowed[row - 1] = true;
        }
        return allowed;
    }

    /// <summary>The k best finite scores, best first (ties: lower column first), as recommendations.</summary>
    private IReadOnlyList<Recommendation> Select(Span<float> scores, bool[]? allowed, int k, Func<int, uint> keyOfColumn)
    {
        // A bounded min-heap of column indices: the root is the worst of the best k so far.
        int size = 0;
        var heap = new int[Math.Min(k, scores.Length)];
        static bool Worse(int a, int b, Span<float> s) => s[a] < s[b] || (s[a] == s[b] && a > b);
        for (int c = 0; c < scores.Length; c++)
        {
            float v = scores[c];
            if (float.IsNegativeInfinity(v) || float.IsNaN(v) || (allowed is not null && !allowed[c])) continue;
            if (size < heap.Length)
            {
                int i = size++;
                heap[i] = c;
                while (i > 0 && Worse(heap[i], heap[(i - 1) / 2], scores)) { (heap[i], heap[(i - 1) / 2]) = (heap[(i - 1) / 2], heap[i]); i = (i - 1) / 2; }
            }
            else if (heap.Length > 0 && Worse(heap[0], c, scores))
            {
                heap[0] = c;
                for (int i = 0; ;)
                {
                    int l = 2 * i + 1, r = l + 1, worst = i;
                    if (l < size && Worse(heap[l], heap[worst], scores)) worst = l;
                    if (r < size && Worse(heap[r], heap[worst], scores)) worst = r;
                    if (worst == i) break;
                    (heap[i], heap[worst]) = (heap[worst], heap[i]);
                    i = worst;
                }
            }
        }
        var ordered = new (int Column, float Score)[size];
        for (int i = 0; i < size; i++) ordered[i] = (heap[i], scores[heap[i]]);
        Array.Sort(ordered, static (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Column.CompareTo(b.Column));
        var list = new List<Recommendation>(ordered.Length);
        foreach (var (column, score) in ordered)
        {
            uint key = keyOfColumn(column);
            list.Add(new Recommendation(key, _data.Vocabulary.ItemId(key), score));
        }
        return list;
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _session.Dispose();
    }
}
