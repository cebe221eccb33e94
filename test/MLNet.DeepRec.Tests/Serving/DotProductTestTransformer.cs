using Microsoft.ML;
using MLNet.DeepRec.Onnx;
using MLNet.DeepRec.Serving;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>Test-only DeepRec transformer: Score = &lt;U[user], V[item]&gt;, Probability = sigmoid(Score).</summary>
internal sealed class DotProductTestTransformer : DeepRecTransformerBase
{
    public const int Dim = 4;

    public DotProductTestTransformer(MLContext ml, float[] users, float[] items, DeepRecScoreKind kind, IDataView? schemaSource,
        string userInput = "UserId", string itemInput = "ItemId")
        : base(ml, BuildGraph(users, items, kind, userInput, itemInput),
            new Dictionary<string, string> { [userInput] = "UserId", [itemInput] = "ItemId" }, kind, schemaSource)
    {
    }

    public static byte[] BuildGraph(float[] users, float[] items, DeepRecScoreKind kind, string userInput = "UserId", string itemInput = "ItemId")
    {
        var g = new OnnxGraphBuilder("dot");
        string u = g.AddInput(userInput, OnnxElementType.UInt32, -1, 1);
        string i = g.AddInput(itemInput, OnnxElementType.UInt32, -1, 1);
        string userEmb = g.Gather(g.AddInitializer("user_emb", users, users.Length / Dim, Dim), g.Cast(u, OnnxElementType.Int64)); // [B,1,D]
        string itemEmb = g.Gather(g.AddInitializer("item_emb", items, items.Length / Dim, Dim), g.Cast(i, OnnxElementType.Int64));
        string score = g.Node("ReduceSum", [g.Mul(userEmb, itemEmb), g.ConstInt64Vector(2)], [OnnxAttribute.Int("keepdims", 0)], "Score"); // [B,1]
        g.AddOutput(score, OnnxElementType.Float, -1, 1);
        if (kind != DeepRecScoreKind.Regression)
            g.AddOutput(g.Node("Sigmoid", [score], outputName: "Probability"), OnnxElementType.Float, -1, 1);
        return g.Build(new Dictionary<string, string> { ["deeprec.model"] = "DotProductTest" });
    }

    public static float Dot(float[] users, float[] items, uint user, uint item)
    {
        float s = 0;
        for (int k = 0; k < Dim; k++)
            s += users[user * Dim + k] * items[item * Dim + k];
        return s;
    }
}
