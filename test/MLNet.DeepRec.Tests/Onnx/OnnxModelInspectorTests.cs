using MLNet.DeepRec.Onnx;
using NUnit.Framework;

namespace MLNet.DeepRec.Tests.Onnx;

[TestFixture]
public class OnnxModelInspectorTests
{
    private static byte[] SampleModel(bool withMetadata = true)
    {
        var g = new OnnxGraphBuilder("sample");
        string u = g.AddInput("user", OnnxElementType.UInt32, -1, 1);
        string h = g.AddInput("history", OnnxElementType.UInt32, -1, 7);
        string e = g.AddInitializer("emb", new float[6], 3, 2);
        string s = g.ReduceSum(g.Gather(e, g.Cast(u, OnnxElementType.Int64)), [2], keepDims: false);
        g.AddOutput(g.Identity(s, "Score"), OnnxElementType.Float, -1, 1);
        g.AddOutput(g.Identity(g.Sigmoid(s), "Probability"), OnnxElementType.Float, -1, 1);
        _ = h;
        return withMetadata
            ? g.Build(new Dictionary<string, string> { ["deeprec.model"] = "Test", ["deeprec.version"] = "1" }, "doc")
            : g.Build();
    }

    [Test]
    public void RoundTrip_ReadsSignatureOpsetAndMetadata()
    {
        var summary = OnnxModelInspector.Read(SampleModel());
        Assert.That(summary.IrVersion, Is.EqualTo(8));
        Assert.That(summary.OpsetVersion, Is.EqualTo(17));
        Assert.That(summary.ProducerName, Is.EqualTo("MLNet.DeepRec"));
        Assert.That(summary.ProducerVersion, Is.Not.Empty);
        Assert.That(summary.InputNames, Is.EqualTo(new[] { "user", "history" }));
        Assert.That(summary.OutputNames, Is.EqualTo(new[] { "Score", "Probability" }));
        Assert.That(summary.Inputs[0].ElementType, Is.EqualTo(OnnxElementType.UInt32));
        Assert.That(summary.Inputs[1].Dims, Is.EqualTo(new long[] { -1, 7 }));
        Assert.That(summary.Outputs[0].Dims, Is.EqualTo(new long[] { -1, 1 }));
        Assert.That(summary.Metadata["deeprec.model"], Is.EqualTo("Test"));
        Assert.That(summary.Metadata["deeprec.version"], Is.EqualTo("1"));
        Assert.That(summary.InitializerCount, Is.EqualTo(2)); // emb + the ReduceSum axes constant
        Assert.That(summary.NodeCount, Is.EqualTo(6));
    }

    [Test]
    public void EmptyBytes_Throw()
    {
        Assert.Throws<InvalidDataException>(() => OnnxModelInspector.Read([]));
    }

    [Test]
    public void EveryTruncation_ThrowsInvalidDataException()
    {
        // Without metadata the last field is opset_import, so no strict prefix is a complete model. (A cut exactly
        // between two trailing metadata entries is valid protobuf and cannot be detected by any reader.)
        byte[] model = SampleModel(withMetadata: false);
        Assert.DoesNotThrow(() => OnnxModelInspector.Read(model));
        for (int length = 0; length < model.Length; length++)
        {
            byte[] cut = model.AsSpan(0, length).ToArray();
            Assert.Throws<InvalidDataException>(() => OnnxModelInspector.Read(cut), $"length {length}");
        }
    }

    [Test]
    public void NotAnOnnxFile_Throws()
    {
        Assert.Throws<InvalidDataException>(() => OnnxModelInspector.Read("PK\u0003\u0004 this is a zip, not onnx"u8.ToArray()));
        Assert.Throws<InvalidDataException>(() => OnnxModelInspector.Read(Enumerable.Repeat((byte)0xFF, 64).ToArray()));
        var ex = Assert.Throws<InvalidDataException>(() => OnnxModelInspector.Read([0x08, 0x08])); // ir_version only
        Assert.That(ex!.Message, Does.Contain("graph"));
    }

    [Test]
    public void CorruptedBytes_ThrowInvalidDataExceptionOrParse_NeverAnythingElse()
    {
        // Random byte flips either still parse (protobuf is permissive) or fail with InvalidDataException; nothing else escapes.
        byte[] model = SampleModel();
        var rng = new Random(7);
        int rejected = 0;
        for (int trial = 0; trial < 500; trial++)
        {
            byte[] bad = (byte[])model.Clone();
            for (int k = 0; k < 3; k++)
                bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
            try
            {
                OnnxModelInspector.Read(bad);
            }
            catch (InvalidDataException)
            {
                rejected++;
            }
        }
        Assert.That(rejected, Is.GreaterThan(0));
    }
}
