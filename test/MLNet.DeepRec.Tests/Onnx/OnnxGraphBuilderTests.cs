using Microsoft.ML.OnnxRuntime;
using MLNet.DeepRec.Onnx;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Onnx;

[TestFixture]
public class OnnxGraphBuilderTests
{
    private static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
            a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    [Test]
    public void GatherFromUInt32IdsThenMatMulSigmoid_MatchesCSharp()
    {
        const int rows = 5, dim = 3;
        float[] table = Random(rows * dim, 1);
        float[] w = Random(dim, 2);

        var g = new OnnxGraphBuilder("gather_matmul");
        string ids = g.AddInput("ids", OnnxElementType.UInt32, -1, 1);
        string emb = g.AddInitializer("emb", table, rows, dim);
        string weights = g.AddInitializer("w", w, dim, 1);
        string idx = g.Cast(ids, OnnxElementType.Int64);
        string gathered = g.Gather(emb, idx);                    // [B,1,dim]
        string flat = g.Reshape(gathered, [-1, dim]);            // [B,dim]
        string y = g.Node("Sigmoid", [g.MatMul(flat, weights)], outputName: "y");
        g.AddOutput(y, OnnxElementType.Float, -1, 1);
        byte[] model = g.Build();

        uint[] batch = [0, 4, 2, 2];
        var outputs = OrtTestRunner.Run(model, ("ids", batch, [batch.Length, 1]));
        var result = outputs["y"];
        Assert.That(result.Shape, Is.EqualTo(new long[] { batch.Length, 1 }));
        for (int b = 0; b < batch.Length; b++)
        {
            double z = 0;
            for (int k = 0; k < dim; k++)
                z += table[batch[b] * dim + k] * w[k];
            Assert.That(result.Floats![b], Is.EqualTo(1 / (1 + Math.Exp(-z))).Within(1e-6));
        }
    }

    [Test]
    public void TopK_ReturnsLargestValuesAndIndices()
    {
        var g = new OnnxGraphBuilder("topk");
        string x = g.AddInput("x", OnnxElementType.Float, -1, -1);
        var (values, indices) = g.TopK(x, 3);
        g.AddOutput(g.Identity(values, "values"), OnnxElementType.Float, -1, 3);
        g.AddOutput(g.Identity(indices, "indices"), OnnxElementType.Int64, -1, 3);

        float[] data = [0.1f, 0.9f, -1f, 0.5f, 0.7f, /* row 2 */ 3f, 2f, 1f, 0f, 4f];
        var outputs = OrtTestRunner.Run(g.Build(), ("x", data, [2, 5]));
        Assert.That(outputs["values"].Floats, Is.EqualTo(new[] { 0.9f, 0.7f, 0.5f, 4f, 3f, 2f }));
        Assert.That(outputs["indices"].Longs, Is.EqualTo(new long[] { 1, 4, 3, 4, 0, 1 }));
        Assert.That(outputs["values"].Shape, Is.EqualTo(new long[] { 2, 3 }));
    }

    [Test]
    public void ReduceSum_WithAndWithoutKeepDims()
    {
        var g = new OnnxGraphBuilder("reduce");
        string x = g.AddInput("x", OnnxElementType.Float, -1, 2, 3);
        g.AddOutput(g.Identity(g.ReduceSum(x, [2], keepDims: true), "keep"), OnnxElementType.Float, -1, 2, 1);
        g.AddOutput(g.Identity(g.ReduceSum(x, [1, 2], keepDims: false), "drop"), OnnxElementType.Float, -1);

        float[] data = Random(12, 3);
        var outputs = OrtTestRunner.Run(g.Build(), ("x", data, [2, 2, 3]));
        Assert.That(outputs["keep"].Shape, Is.EqualTo(new long[] { 2, 2, 1 }));
        Assert.That(outputs["drop"].Shape, Is.EqualTo(new long[] { 2 }));
        for (int r = 0; r < 4; r++)
            Assert.That(outputs["keep"].Floats![r], Is.EqualTo(data[3 * r] + data[3 * r + 1] + data[3 * r + 2]).Within(1e-6));
        for (int b = 0; b < 2; b++)
            Assert.That(outputs["drop"].Floats![b], Is.EqualTo(data.Skip(6 * b).Take(6).Sum()).Within(1e-5));
    }

    [Test]
    public void LayerNormalization_MatchesCSharp()
    {
        const int dim = 4;
        float[] gamma = [1f, 2f, 0.5f, -1f];
        float[] beta = [0f, 0.1f, -0.2f, 0.3f];
        const float eps = 1e-5f;
        var g = new OnnxGraphBuilder("ln");
        string x = g.AddInput("x", OnnxElementType.Float, -1, dim);
        string y = g.LayerNormalization(x, g.AddInitializer("gamma", gamma, dim), g.AddInitializer("beta", beta, dim), -1, eps);
        g.AddOutput(g.Identity(y, "y"), OnnxElementType.Float, -1, dim);

        float[] data = Random(3 * dim, 4);
        var result = OrtTestRunner.Run(g.Build(), ("x", data, [3, dim]))["y"].Floats!;
        for (int r = 0; r < 3; r++)
        {
            var row = data.Skip(r * dim).Take(dim).Select(v => (double)v).ToArray();
            double mean = row.Average(), variance = row.Select(v => (v - mean) * (v - mean)).Average();
            for (int k = 0; k < dim; k++)
            {
                double expected = (row[k] - mean) / Math.Sqrt(variance + eps) * gamma[k] + beta[k];
                Assert.That(result[r * dim + k], Is.EqualTo(expected).Within(1e-5));
            }
        }
    }

    [Test]
    public void WhereEqualNotAndSliceConcat_MatchCSharp()
    {
        // Mask padding ids (0) to -inf-like values, then keep the first two columns and append a constant column.
        var g = new OnnxGraphBuilder("where");
        string ids = g.AddInput("ids", OnnxElementType.Int64, -1, 3);
        string scores = g.AddInput("scores", OnnxElementType.Float, -1, 3);
        string isPad = g.Equal(ids, g.ConstInt64([0]));
        string notPad = g.Not(isPad);
        string positive = g.Greater(scores, g.ConstFloat(0f));
        string keep = g.And(notPad, positive);
        string masked = g.Where(keep, scores, g.ConstFloat(-1e9f));
        string sliced = g.Slice(masked, [0], [2], [1]);
        string ones = g.Add(g.Mul(sliced, g.ConstFloat(0f)), g.ConstFloat(1f));
        string joined = g.Concat(1, sliced, g.Slice(ones, [0], [1], [1]));
        g.AddOutput(g.Identity(joined, "y"), OnnxElementType.Float, -1, 3);

        long[] idData = [1, 0, 2, 3, 4, 0];
        float[] scoreData = [0.5f, 0.6f, -0.2f, -0.1f, 0.2f, 0.3f];
        var y = OrtTestRunner.Run(g.Build(), ("ids", idData, [2, 3]), ("scores", scoreData, [2, 3]))["y"];
        Assert.That(y.Shape, Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(y.Floats, Is.EqualTo(new[] { 0.5f, -1e9f, 1f, -1e9f, 0.2f, 1f }));
    }

    [Test]
    public void SoftmaxTransposeUnsqueezeSqueezeGemm_MatchCSharp()
    {
        var g = new OnnxGraphBuilder("misc");
        string x = g.AddInput("x", OnnxElementType.Float, -1, 2);
        float[] w = [1f, 2f, 3f, 4f, 5f, 6f]; // [3,2] used with transB => x @ w^T : [B,3]
        float[] bias = [0.1f, 0.2f, 0.3f];
        string gemm = g.Gemm(x, g.AddInitializer("w", w, 3, 2), g.AddInitializer("b", bias, 3), transB: true);
        string sm = g.Softmax(gemm, 1);
        string roundTrip = g.Squeeze(g.Unsqueeze(sm, [1]), [1]);
        string t = g.Transpose(roundTrip, [1, 0]);
        g.AddOutput(g.Identity(t, "y"), OnnxElementType.Float, 3, -1);

        float[] data = [0.5f, -0.5f];
        var y = OrtTestRunner.Run(g.Build(), ("x", data, [1, 2]))["y"];
        Assert.That(y.Shape, Is.EqualTo(new long[] { 3, 1 }));
        double[] logits = [0.5 - 1 + 0.1, 1.5 - 2 + 0.2, 2.5 - 3 + 0.3];
        double norm = logits.Sum(Math.Exp);
        for (int i = 0; i < 3; i++)
            Assert.That(y.Floats![i], Is.EqualTo(Math.Exp(logits[i]) / norm).Within(1e-6));
    }

    [Test]
    public void Int32Initializer_AndNegExpTanhReluSubDiv()
    {
        var g = new OnnxGraphBuilder("int32");
        string x = g.AddInput("x", OnnxElementType.Float, -1);
        string offsets = g.Cast(g.AddInitializer("offsets", new[] { 1, -2 }, 2), OnnxElementType.Float);
        string z = g.Sub(g.Add(x, offsets), g.ConstFloat(1f));                    // x + o - 1
        string y = g.Div(g.Relu(g.Neg(z)), g.ConstFloat(2f));                     // relu(-z)/2
        string t = g.Tanh(g.Exp(y));
        g.AddOutput(g.Identity(t, "y"), OnnxElementType.Float, -1);
        var result = OrtTestRunner.Run(g.Build(), ("x", new[] { 0.5f, 0.5f }, [2]))["y"].Floats!;
        double[] zs = [0.5 + 1 - 1, 0.5 - 2 - 1];
        for (int i = 0; i < 2; i++)
            Assert.That(result[i], Is.EqualTo(Math.Tanh(Math.Exp(Math.Max(0, -zs[i]) / 2))).Within(1e-6));
    }

    [Test]
    public void Builder_RejectsUnknownInputsDuplicateNamesAndBadDims()
    {
        var g = new OnnxGraphBuilder("bad");
        g.AddInput("x", OnnxElementType.Float, -1, 2);
        Assert.Throws<InvalidOperationException>(() => g.Relu("nope"));
        Assert.Throws<ArgumentException>(() => g.AddInput("x", OnnxElementType.Float, 1));
        Assert.Throws<ArgumentException>(() => g.AddInitializer("w", new float[3], 2, 2));
        Assert.Throws<InvalidOperationException>(() => g.AddOutput("missing", OnnxElementType.Float, 1));
        Assert.Throws<InvalidOperationException>(() => g.Build()); // no outputs
    }

    [Test]
    public void OrtSeesDeclaredSignature()
    {
        var g = new OnnxGraphBuilder("sig");
        string u = g.AddInput("user", OnnxElementType.UInt32, -1, 1);
        g.AddOutput(g.Identity(g.Cast(u, OnnxElementType.Float), "Score"), OnnxElementType.Float, -1, 1);
        using var session = new InferenceSession(g.Build());
        var input = session.InputMetadata["user"];
        Assert.That(input.ElementType, Is.EqualTo(typeof(uint)));
        Assert.That(input.Dimensions, Is.EqualTo(new[] { -1, 1 }));
        Assert.That(input.SymbolicDimensions[0], Is.EqualTo("batch"));
        Assert.That(session.OutputMetadata["Score"].ElementType, Is.EqualTo(typeof(float)));
        Assert.That(session.ModelMetadata.ProducerName, Is.EqualTo("MLNet.DeepRec"));
    }
}
