using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.DeepRec.Onnx;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Serving;

/// <summary>Facts about ML.NET 5.0.1's OnnxTransformer and key columns that the serving design relies on.</summary>
[TestFixture]
public class MlNetFactsTests
{
    public sealed class Row
    {
        public string UserId { get; set; } = "";
        public string ItemId { get; set; } = "";
    }

    public sealed class KeyedRow
    {
        [KeyType(10)] public uint UserId { get; set; }
    }

    private static byte[] Graph()
    {
        // Score = user_key + 10 * item_key, as [B,1]; Scalar.output = the same reshaped to rank 0.
        var g = new OnnxGraphBuilder("facts");
        string u = g.AddInput("UserId", OnnxElementType.UInt32, -1, 1);
        string i = g.AddInput("ItemId", OnnxElementType.UInt32, -1, 1);
        string s = g.Add(g.Cast(u, OnnxElementType.Float), g.Mul(g.Cast(i, OnnxElementType.Float), g.ConstFloat(10f)));
        g.AddOutput(g.Identity(s, "Score"), OnnxElementType.Float, -1, 1);
        g.AddOutput(g.Identity(g.Reshape(s, []), "Scalar.output"), OnnxElementType.Float);
        return g.Build();
    }

    [Test]
    public void OnnxTransformer_KeysArriveAsRawUInt32_OutputsAreVectors_InputsKept()
    {
        var ml = new MLContext(1);
        IDataView data = ml.Data.LoadFromEnumerable(new[] { new Row { UserId = "a", ItemId = "x" }, new Row { UserId = "b", ItemId = "y" }, new Row { UserId = "a", ItemId = "y" } });
        var model = ml.Transforms.Conversion.MapValueToKey("UserId").Append(ml.Transforms.Conversion.MapValueToKey("ItemId"))
            .Append(ml.Transforms.ApplyOnnxModel(["Score", "Scalar.output"], ["UserId", "ItemId"], new MemoryStream(Graph())))
            .Fit(data);
        IDataView output = model.Transform(data);

        // Key columns reach ONNX Runtime as their raw 1-based uint32 key values (a=1, b=2; x=1, y=2).
        Assert.That(output.GetColumn<float[]>("Score").Select(v => v.Single()), Is.EqualTo(new[] { 11f, 22f, 21f }));
        // A [-1,1] output becomes a known-size vector column, never a scalar.
        Assert.That(output.Schema["Score"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, 1, 1)));
        // The ONNX input columns stay visible after the OnnxTransformer.
        Assert.That(output.Schema["UserId"].Type, Is.InstanceOf<KeyDataViewType>());
        Assert.That(output.Schema["UserId"].IsHidden, Is.False);
        // A ".output" suffix is stripped from the column name, and a rank-0 output is typed as a scalar column
        // but its getter fails: no scalar columns without a mapping after the OnnxTransformer.
        Assert.That(output.Schema["Scalar"].Type, Is.EqualTo(NumberDataViewType.Single));
        Assert.Catch(() => output.GetColumn<float>("Scalar").ToArray());
        // ML.NET's Expression transform keeps the vector shape, so it cannot make the scalar either.
        var expression = ml.Transforms.Expression("S", "x => x", "Score").Fit(output).Transform(output);
        Assert.That(expression.Schema["S"].Type, Is.InstanceOf<VectorDataViewType>());
    }

    [Test]
    public void PocoKeyTypeMember_ValueV_BecomesKeyVPlusOne()
    {
        var ml = new MLContext();
        IDataView view = ml.Data.LoadFromEnumerable(new[] { new KeyedRow { UserId = 2 }, new KeyedRow { UserId = 0 } });
        Assert.That(view.GetColumn<uint>("UserId"), Is.EqualTo(new uint[] { 3, 1 }));
    }
}
