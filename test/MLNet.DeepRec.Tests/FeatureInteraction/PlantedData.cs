using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.DeepRec.Tests.FeatureInteraction;

/// <summary>
/// Generated context-aware data with planted structure: fields A (12 values), B (10 values), C (6 values, pure noise for
/// the target) and a numeric field X. The target depends on the A×B interaction through rank-2 factors, which an
/// additive (linear) model cannot represent.
/// </summary>
internal static class PlantedData
{
    public sealed class Row
    {
        public string A { get; set; } = "";
        public string B { get; set; } = "";
        public string C { get; set; } = "";
        [VectorType(2)] public float[] X { get; set; } = new float[2];
        public float Label { get; set; }
        public bool IsPositive { get; set; }
    }

    public static Row[] Rows(int count, int seed)
    {
        var factors = new Random(99); // the same planted structure for every call
        double[,] ua = new double[12, 2], vb = new double[10, 2];
        for (int i = 0; i < 12; i++) for (int k = 0; k < 2; k++) ua[i, k] = factors.NextDouble() * 2 - 1;
        for (int i = 0; i < 10; i++) for (int k = 0; k < 2; k++) vb[i, k] = factors.NextDouble() * 2 - 1;
        var rng = new Random(seed);
        var rows = new Row[count];
        for (int n = 0; n < count; n++)
        {
            int a = rng.Next(12), b = rng.Next(10), c = rng.Next(6);
            double interaction = 2.0 * (ua[a, 0] * vb[b, 0] + ua[a, 1] * vb[b, 1]);
            float x0 = (float)(rng.NextDouble() * 2 - 1);
            double y = interaction + 0.3 * x0 + 0.05 * (rng.NextDouble() * 2 - 1);
            double p = 1 / (1 + Math.Exp(-3 * interaction));
            rows[n] = new Row
            {
                A = "a" + a, B = "b" + b, C = "c" + c, X = new[] { x0, 1f },
                Label = (float)y, IsPositive = rng.NextDouble() < p,
            };
        }
        return rows;
    }

    public sealed record Set(MLContext Context, ITransformer Featurizer, IDataView Train, IDataView Validation, IDataView Test);

    private static readonly Lazy<Set> Cached = new(() => Create(2000));

    /// <summary>Keys "AKey"/"BKey"/"CKey", one-hot vectors "AVec"/"BVec"/"CVec" and the numeric vector "X".</summary>
    public static Set Default => Cached.Value;

    public static Set Create(int trainRows)
    {
        var ml = new MLContext(1);
        var train = ml.Data.LoadFromEnumerable(Rows(trainRows, 1));
        var featurizer = ml.Transforms.Conversion.MapValueToKey("AKey", "A")
            .Append(ml.Transforms.Conversion.MapValueToKey("BKey", "B"))
            .Append(ml.Transforms.Conversion.MapValueToKey("CKey", "C"))
            .Append(ml.Transforms.Categorical.OneHotEncoding("AVec", "A"))
            .Append(ml.Transforms.Categorical.OneHotEncoding("BVec", "B"))
            .Append(ml.Transforms.Categorical.OneHotEncoding("CVec", "C"))
            .Fit(train);
        return new Set(ml, featurizer, ml.Data.Cache(featurizer.Transform(train)),
            ml.Data.Cache(featurizer.Transform(ml.Data.LoadFromEnumerable(Rows(800, 2)))),
            ml.Data.Cache(featurizer.Transform(ml.Data.LoadFromEnumerable(Rows(1000, 3)))));
    }
}
