using Microsoft.ML;
using MLNet.DeepRec.Data;

namespace MLNet.DeepRec;

public sealed partial class DeepRecDataCatalog
{
    private const byte TrainPartition = 0, TestPartition = 1, ValidationPartition = 2;

    /// <summary>
    /// Leave-one-out split, the protocol of the NCF and SASRec papers: for each user, the latest interaction (largest
    /// timestamp) goes to <see cref="RecommendationSplit.Test"/> and, when <paramref name="holdOutValidation"/> is true,
    /// the second latest goes to <see cref="RecommendationSplit.Validation"/>; all others stay in
    /// <see cref="RecommendationSplit.Train"/>.
    /// </summary>
    /// <remarks>
    /// <para>Ties of timestamp are broken by row order: of two rows with the same timestamp, the later row is the later
    /// interaction.</para>
    /// <para>Small users: a user is held out from only when at least one training interaction remains. A user with one
    /// interaction keeps it in train; with <paramref name="holdOutValidation"/>, a user with two interactions gets one
    /// test and one training interaction (no validation), and a user needs three for all three sets.</para>
    /// <para>The outputs are row subsets of <paramref name="data"/> in its row order with its schema unchanged, key
    /// types included (the views read <paramref name="data"/> again when cursored, so it must return the same rows in the
    /// same order each time, as ML.NET data views do). The split reads <paramref name="data"/> once, here, and is
    /// deterministic.</para>
    /// </remarks>
    /// <param name="data">The interactions.</param>
    /// <param name="userIdColumnName">The user column: text, any integer type or any key type.</param>
    /// <param name="timestampColumnName">The timestamp column: any numeric type. NaN is rejected.</param>
    /// <param name="holdOutValidation">Whether to also hold out each user's second latest interaction for validation.</param>
    /// <returns>The split; <see cref="RecommendationSplit.Validation"/> is null unless <paramref name="holdOutValidation"/>.</returns>
    /// <exception cref="ArgumentException">A column is missing or of an unsupported type.</exception>
    /// <exception cref="InvalidOperationException">A timestamp is NaN.</exception>
    public RecommendationSplit LeaveOneOutSplit(IDataView data, string userIdColumnName = "UserId", string timestampColumnName = "Timestamp",
        bool holdOutValidation = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        var userCol = KeyedInteractions.RequireColumn(data.Schema, userIdColumnName, "user");
        var timeCol = KeyedInteractions.RequireColumn(data.Schema, timestampColumnName, "timestamp");

        var groups = new List<int>();
        var times = new List<double>();
        int groupCount = 0;
        using (var cursor = data.GetRowCursor(new[] { userCol, timeCol }))
        {
            var group = UserGroupReader.Create(cursor, userCol, () => groupCount++);
            var time = NumericGetter.AsDouble(cursor, timeCol, "timestamp");
            double t = 0;
            while (cursor.MoveNext())
            {
                groups.Add(group());
                time(ref t);
                if (double.IsNaN(t))
                    throw new InvalidOperationException($"The timestamp column '{timestampColumnName}' has a NaN value at row {cursor.Position}.");
                times.Add(t);
            }
        }

        // One pass keeps, per user, the latest and second latest row; '>=' makes a later row win a timestamp tie.
        var latest = new int[groupCount];
        var second = new int[groupCount];
        var count = new int[groupCount];
        Array.Fill(latest, -1);
        Array.Fill(second, -1);
        for (int r = 0; r < groups.Count; r++)
        {
            int g = groups[r];
            count[g]++;
            double t = times[r];
            if (latest[g] < 0 || t >= times[latest[g]]) { second[g] = latest[g]; latest[g] = r; }
            else if (second[g] < 0 || t >= times[second[g]]) second[g] = r;
        }

        var partition = new byte[groups.Count];
        for (int g = 0; g < groupCount; g++)
        {
            if (count[g] >= 2) partition[latest[g]] = TestPartition;
            if (holdOutValidation && count[g] >= 3) partition[second[g]] = ValidationPartition;
        }
        return MakeSplit(data, partition, holdOutValidation);
    }

    /// <summary>
    /// Random split. With <paramref name="userIdColumnName"/> null, rows are shuffled and the first
    /// round(<paramref name="testFraction"/> × rows) go to test, the next round(<paramref name="validationFraction"/> ×
    /// rows) to validation. With a user column the split is stratified per user: each user's rows are shuffled and
    /// round(fraction × the user's rows) go to test and validation (halves rounded away from zero), capped so that every
    /// user keeps at least one training row.
    /// </summary>
    /// <remarks>The outputs keep <paramref name="data"/>'s schema and row order (see <see cref="LeaveOneOutSplit"/>).
    /// Deterministic for a given <paramref name="seed"/>.</remarks>
    /// <param name="data">The interactions.</param>
    /// <param name="testFraction">Fraction of rows for test, in (0, 1).</param>
    /// <param name="validationFraction">Fraction of rows for validation, in [0, 1); 0 gives no validation set.</param>
    /// <param name="seed">Seed of the shuffle.</param>
    /// <param name="userIdColumnName">Optional user column (text, integer or key) for a per-user stratified split.</param>
    /// <returns>The split; <see cref="RecommendationSplit.Validation"/> is null when <paramref name="validationFraction"/> is 0.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A fraction is out of range or the two sum to 1 or more.</exception>
    public RecommendationSplit RandomSplit(IDataView data, double testFraction, double validationFraction = 0, int seed = 0, string? userIdColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!(testFraction > 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "testFraction must be in (0, 1).");
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "validationFraction must be in [0, 1).");
        if (testFraction + validationFraction >= 1)
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction,
                $"testFraction + validationFraction must be below 1 (got {testFraction} + {validationFraction}).");

        var rng = new Random(seed);
        byte[] partition;
        if (userIdColumnName == null)
        {
            long rows = 0;
            using (var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>()))
                while (cursor.MoveNext()) rows++;
            partition = new byte[rows];
            var order = Permutation((int)rows, rng);
            int nTest = (int)Math.Round(testFraction * rows, MidpointRounding.AwayFromZero);
            int nVal = (int)Math.Round(validationFraction * rows, MidpointRounding.AwayFromZero);
            for (int i = 0; i < nTest && i < order.Length; i++) partition[order[i]] = TestPartition;
            for (int i = nTest; i < nTest + nVal && i < order.Length; i++) partition[order[i]] = ValidationPartition;
        }
        else
        {
            var userCol = KeyedInteractions.RequireColumn(data.Schema, userIdColumnName, "user");
            var groups = new List<int>();
            int groupCount = 0;
            using (var cursor = data.GetRowCursor(new[] { userCol }))
            {
                var group = UserGroupReader.Create(cursor, userCol, () => groupCount++);
                while (cursor.MoveNext()) groups.Add(group());
            }
            partition = new byte[groups.Count];
            // Rows grouped by user (counting sort keeps row order within a user).
            var start = new int[groupCount + 1];
            foreach (int g in groups) start[g + 1]++;
            for (int g = 0; g < groupCount; g++) start[g + 1] += start[g];
            var rowsByGroup = new int[groups.Count];
            var fill = (int[])start.Clone();
            for (int r = 0; r < groups.Count; r++) rowsByGroup[fill[groups[r]]++] = r;
            for (int g = 0; g < groupCount; g++)
            {
                var span = rowsByGroup.AsSpan(start[g], start[g + 1] - start[g]);
                int n = span.Length;
                Shuffle(span, rng);
                int nTest = (int)Math.Round(testFraction * n, MidpointRounding.AwayFromZero);
                int nVal = (int)Math.Round(validationFraction * n, MidpointRounding.AwayFromZero);
                nTest = Math.Min(nTest, n - 1);
                nVal = Math.Min(nVal, n - 1 - nTest);
                for (int i = 0; i < nTest; i++) partition[span[i]] = TestPartition;
                for (int i = nTest; i < nTest + nVal; i++) partition[span[i]] = ValidationPartition;
            }
        }
        return MakeSplit(data, partition, validationFraction > 0);
    }

    private static RecommendationSplit MakeSplit(IDataView data, byte[] partition, bool withValidation)
        => new(new RowSubsetDataView(data, partition, TrainPartition),
               new RowSubsetDataView(data, partition, TestPartition),
               withValidation ? new RowSubsetDataView(data, partition, ValidationPartition) : null);

    private static int[] Permutation(int n, Random rng)
    {
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = i;
        Shuffle(a, rng);
        return a;
    }

    private static void Shuffle(Span<int> a, Random rng)
    {
        for (int i = a.Length - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }
    }
}
